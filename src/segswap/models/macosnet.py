"""MaCoSNet (Chen et al., "Show, Match and Segment", TPAMI 2020): joint semantic matching and object
co-segmentation, weakly supervised.

On the two frozen feature maps f_A, f_B (the shared encoder E):

- **Correlation** S_AB: the cosine similarity of every cell of A with every cell of B, after removing
  each image's mean feature (what makes frozen features tell "the object both images show" from
  "what every photo looks like"; the shared reference facts, shared/docs/reference.md). S_BA is its transpose.
- **Transformation predictor G** (Rocco et al. 2017's geometric matching): both maps are resampled to
  a fixed ``grid``×``grid`` so that any pair of image sizes gives the regressor the same
  grid²-channel correlation volume (ReLU, L2-normalised over the channels, as Rocco's). A
  convolutional regressor predicts an affine transformation; B's features are warped by it, the
  correlation is recomputed and a second regressor predicts a thin-plate spline on a
  ``tps_grid``×``tps_grid`` control grid. T_AB(p) = affine(tps(p)) maps a point of A to B. Both
  regressors start at the identity (their last layer is zero). G runs on (A, B) and on (B, A).
- **Co-segmentation decoder D**, fully convolutional, on C_A = [f_A, S_AB]: S_AB enters as each cell's
  ``cues`` largest correlations, sorted (the same evidence of a partner, without B's layout, which a
  decoder that must run on any pair of sizes cannot use).

Outputs: the pair models' dict (:class:`~segswap.models.transformer.SegSwapTransformer`): ``mask_a``,
``mask_b``, and ``flow_ab``/``flow_ba``, the warps read at each cell's centre (a global, smooth
correspondence field; clamped to the image). Also ``affine_ab``/``affine_ba`` (B×2×3, normalised
coordinates in [-1, 1], ``torch.nn.functional.affine_grid``'s convention), ``tps_ab``/``tps_ba``
(B×K×2, the TPS control points' displacements, K = tps_grid²) and ``correlation`` (B×Na×Nb, S_AB).
:func:`transform_points` applies T to any points; the losses (:mod:`segswap.train.losses`) use it.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .correlation import cell_centres, cell_similarity
from .layers import merged_conf


def centred(feats: torch.Tensor) -> torch.Tensor:
    """B×C×H×W features minus each image's mean feature, L2-normalised per cell."""
    return F.normalize(feats - feats.mean(dim=(2, 3), keepdim=True), dim=1)


def correlation_volume(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """B×(Hb·Wb)×Ha×Wa: for each cell of a, its similarity to every cell of b as channels; ReLU and
    L2-normalised over the channels (Rocco et al.), so the regressor sees where the matches are, not
    how strong the features' similarity is overall."""
    (b, _, ha, wa) = fa.shape
    volume = cell_similarity(fa, fb).transpose(1, 2).reshape(b, -1, ha, wa)
    return F.normalize(F.relu(volume), dim=1)


@functools.lru_cache(maxsize=4)
def _tps_system(grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The regular grid×grid control points in [-1, 1]² (K×2) and the inverse of the thin-plate
    spline's (K+3)×(K+3) linear system on them: it depends only on the grid, so it is solved once."""
    steps = torch.linspace(-1, 1, grid)
    control = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).reshape(-1, 2)
    n = len(control)
    system = torch.zeros(n + 3, n + 3, dtype=torch.float64)
    system[:n, :n] = _radial(control, control)
    system[:n, n] = 1
    system[:n, n + 1:] = control
    system[n, :n] = 1
    system[n + 1:, :n] = control.T
    return control, torch.linalg.inv(system).float()


def _radial(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """U(r) = r² log r² between every point of p (…×N×2) and of q (K×2) → …×N×K."""
    r2 = ((p[..., :, None, :] - q) ** 2).sum(-1)
    return r2 * torch.log(r2.clamp(min=1e-9))


def tps_warp(points: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Thin-plate spline on a regular control grid: control point i moves to grid_i + δ_i (``displacement``
    B×K×2, K a square) and every point (``points`` B×N×2) follows the smoothest interpolating warp."""
    grid = math.isqrt(displacement.shape[1])
    control, inverse = (t.to(points) for t in _tps_system(grid))
    n = len(control)
    targets = torch.cat([control + displacement, displacement.new_zeros(len(displacement), 3, 2)], dim=1)
    coefficients = inverse @ targets  # B×(K+3)×2: radial weights, then the affine part
    affine = torch.cat([torch.ones_like(points[..., :1]), points], dim=-1)
    return _radial(points, control) @ coefficients[:, :n] + affine @ coefficients[:, n:]


def apply_affine(theta: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """B×2×3 affine matrices applied to points B×N×2 → B×N×2."""
    return points @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]


def transform_points(out: dict, direction: str, points: torch.Tensor) -> torch.Tensor:
    """T_AB (``direction`` "ab") or T_BA ("ba") of a MaCoSNet output dict applied to ``points`` B×N×2
    in [-1, 1] (x, y): the TPS, then the affine transformation."""
    return apply_affine(out[f"affine_{direction}"], tps_warp(points, out[f"tps_{direction}"]))


def warp_flow(out: dict, direction: str, grid: tuple[int, int]) -> torch.Tensor:
    """The warp read at every cell centre of an h×w grid → B×h×w×2, (x, y) in [0, 1] of the other
    image, clamped to it."""
    h, w = grid
    affine = out[f"affine_{direction}"]
    points = (cell_centres(h, w, affine.device) * 2 - 1).expand(len(affine), -1, -1)
    return ((transform_points(out, direction, points) + 1) / 2).clamp(0, 1).view(-1, h, w, 2)


class Regressor(nn.Module):
    """Rocco et al.'s feature regression: two unpadded convolutions with batch norm and ReLU on the
    grid×grid correlation volume, then a linear layer to ``outputs`` parameters, zero at the start."""

    def __init__(self, grid: int, channels: list[int], kernels: list[int], outputs: int):
        super().__init__()
        layers, previous, side = [], grid * grid, grid
        for width, kernel in zip(channels, kernels):
            layers += [nn.Conv2d(previous, width, kernel), nn.BatchNorm2d(width), nn.ReLU()]
            previous, side = width, side - kernel + 1
        if side < 1:
            raise ValueError(f"regressor kernels {kernels} do not fit a {grid}×{grid} correlation grid")
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(previous * side * side, outputs)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(volume).flatten(1))


IDENTITY_AFFINE = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class MaCoSNet(nn.Module):
    """Matching (affine + TPS warp) and co-segmentation of a pair from frozen features; see the module
    docstring for the outputs. Image a and b may have different grid sizes."""

    default_conf = {
        "input_dim": 120,  # backbone channels
        "grid": 15,  # side of the regressors' correlation grid (Rocco et al.: 15×15)
        "regressor_channels": [64, 32],
        "regressor_kernels": [5, 3],
        "tps_grid": 3,
        "decoder_dim": 64,
        "cues": 8,  # largest correlations per cell given to the decoder
        # The regressors' learning rate relative to the decoder's: their last layer sums 2.6 k inputs, so
        # at the full rate one Adam step can move a warp parameter by ~1 (a whole half-image).
        "regressor_lr_scale": 0.25,
    }

    def __init__(self, **conf):
        super().__init__()
        self.conf = merged_conf(self, conf)
        c = self.conf
        self.affine_regressor = Regressor(c["grid"], c["regressor_channels"], c["regressor_kernels"], 6)
        self.tps_regressor = Regressor(c["grid"], c["regressor_channels"], c["regressor_kernels"], 2 * c["tps_grid"] ** 2)
        d = c["decoder_dim"]
        self.decoder = nn.Sequential(
            nn.Conv2d(c["input_dim"] + c["cues"], d, 1), nn.ReLU(),
            nn.Conv2d(d, d, 3, padding=1), nn.ReLU(),
            nn.Conv2d(d, d, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(d, 1, 1),
        )

    def forward(self, data: dict) -> dict:
        fa, fb = data["feats_a"], data["feats_b"]
        (b, _, ha, wa), (hb, wb) = fa.shape, fb.shape[2:]
        ca, cb = centred(fa), centred(fb)
        correlation = cell_similarity(ca, cb)  # S_AB, B×Na×Nb
        k = min(self.conf["cues"], ha * wa, hb * wb)
        cues_a = correlation.topk(k, dim=2).values.transpose(1, 2).reshape(b, k, ha, wa)
        # topk along a contiguous last dimension: along dim 1 it is ~10× slower on the CPU
        cues_b = correlation.transpose(1, 2).contiguous().topk(k, dim=2).values.transpose(1, 2).reshape(b, k, hb, wb)
        mask_a = self._decode(fa, cues_a)
        mask_b = self._decode(fb, cues_b)
        # G on (A, B) and (B, A) as one batch, on the maps resampled to the regressors' grid.
        g = self.conf["grid"]
        small_a, small_b = (F.normalize(F.adaptive_avg_pool2d(x, g), dim=1) for x in (ca, cb))
        affine, tps = self._transformation(torch.cat([small_a, small_b]), torch.cat([small_b, small_a]))
        out = {"mask_a": mask_a, "mask_b": mask_b, "correlation": correlation,
               "affine_ab": affine[:b], "affine_ba": affine[b:], "tps_ab": tps[:b], "tps_ba": tps[b:]}
        out["flow_ab"] = warp_flow(out, "ab", (ha, wa))
        out["flow_ba"] = warp_flow(out, "ba", (hb, wb))
        return out

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups; ``lr_scale`` multiplies the schedule's learning rate, ``name`` lets a
        training stage scale one group (:meth:`segswap.train.macosnet_training.MacosnetTraining.lr_scale`)."""
        regressors = [*self.affine_regressor.parameters(), *self.tps_regressor.parameters()]
        return [{"params": list(self.decoder.parameters()), "lr_scale": 1.0, "name": "decoder"},
                {"params": regressors, "lr_scale": self.conf["regressor_lr_scale"], "name": "regressors"}]

    def _decode(self, feats: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(torch.cat([feats, cues], dim=1))[:, 0]
        return torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)

    def _transformation(self, source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Affine B×2×3 then TPS displacements B×K×2 taking source's points to target's (both maps
        grid×grid, centred and normalised)."""
        affine = IDENTITY_AFFINE.to(source) + self.affine_regressor(correlation_volume(source, target)).view(-1, 2, 3)
        # The target's features seen through the affine warp, on the source's grid: the TPS regressor
        # corrects what the affine warp left.
        sampling = F.affine_grid(affine, list(target.shape), align_corners=False)
        warped = F.normalize(F.grid_sample(target, sampling, mode="bilinear", padding_mode="zeros", align_corners=False), dim=1)
        tps = self.tps_regressor(correlation_volume(source, warped)).view(len(source), -1, 2)
        return affine, tps
