"""SCOTT (Pop et al.): is the object in image a the same object as in image b?

* **CODER**, twin encoders that exchange features at every stage: stage 1 encodes each image's frozen
  backbone map alone, stage i > 1 encodes the concatenation of its own map and the other image's
  (paper §4, ``F_i^A = ψ_i([F_{i-1}^A, F_{i-1}^B])``). The other map is resized to this image's grid
  because the two images may have different aspect ratios. The paper's CODER downsamples pixels to
  stride 32; ours starts from the stride-16 backbone map and keeps that grid, so the masks stay at the
  pair model's resolution.
* **Co-salient segmentation heads** on ``F^A ∥ F^B`` → masks ``M^A``, ``M^B``.
* **MATCHER** (paper Alg. 1): foreground descriptors ``R^A`` (cells with ``M^A > alpha``), ``R^B``;
  cosine similarity ``S`` (P×Q); ``S_ij · [R^A_i, R^B_j]`` (2d×P×Q); adaptive max-pool to K×K; a small
  CNN Φ → match logit. To keep CPU memory bounded at most ``max_cells`` foreground cells per image
  (the most confident, kept in raster order) enter the matcher. Φ is applied to the a→b and the b→a
  arrangement and the logits averaged, so swapping the images gives the same answer.
* Ours, not the paper's: Φ also reads ``S`` itself and the cosine similarity of the *frozen* backbone
  features of the same cells, each max-pooled to K×K, and its last layer also sees six global
  statistics of those two maps (their maximum and the mean best match of each side). The CODER mixes
  the other image into each branch, which makes its descriptors alike for any pair; the frozen
  similarity says whether the two regions actually look alike. Without these the classifier stayed
  near chance (lab/training.md).

The twin branches and the two heads share their weights (a Siamese CODER), which is what makes the
model symmetric; the paper does not say whether its ψ^A and ψ^B share weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import merged_conf

#: Logit returned when either image has no foreground cell: a clear "no match" (probability ≈ 2e-9).
EMPTY_LOGIT = -20.0
#: The similarity statistics vary within a narrow band (best cosines ≈ 0.5–0.9); this gain puts them on
#: the scale Adam's step size can move a weight across in a short CPU schedule.
STATS_GAIN = 10.0


def _block(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_dim, out_dim, 3, padding=1), nn.GroupNorm(8, out_dim), nn.ReLU(inplace=True),
        nn.Conv2d(out_dim, out_dim, 3, padding=1), nn.GroupNorm(8, out_dim), nn.ReLU(inplace=True),
    )


def _on_grid(other: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``other`` (B×C×h'×w') resized to ``like``'s grid, so the two can be concatenated."""
    if other.shape[-2:] == like.shape[-2:]:
        return other
    return F.interpolate(other, size=like.shape[-2:], mode="bilinear", align_corners=False)


def foreground_cells(mask: torch.Tensor, alpha: float, max_cells: int) -> torch.Tensor:
    """Flat indices of one image's foreground cells: ``mask`` h×w → at most ``max_cells`` cells with
    ``mask > alpha`` (the most confident if more), in raster order. May be empty."""
    flat = mask.flatten()
    keep = torch.nonzero(flat > alpha).flatten()
    if len(keep) > max_cells:
        keep = keep[flat[keep].topk(max_cells).indices].sort().values
    return keep


def gather_cells(features: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """``features`` d×h×w at flat ``cells`` → P×d."""
    return features.flatten(1)[:, cells].T


class PairPooling(nn.Module):
    """MATCHER's pairing and pooling: R^A (P×d), R^B (Q×d) → the (2d+1)×K×K tensor Φ reads (the
    similarity-weighted pairs, then S), or None when P or Q is 0 (nothing to compare). ``extra``
    (P×Q similarity maps, E×P×Q) are pooled the same way and appended."""

    def __init__(self, pool: int):
        super().__init__()
        self.pool = pool

    def forward(self, region_a: torch.Tensor, region_b: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor | None:
        if len(region_a) == 0 or len(region_b) == 0:
            return None
        similarity = F.normalize(region_a, dim=1) @ F.normalize(region_b, dim=1).T  # P×Q cosine
        p, q = similarity.shape
        pairs = torch.cat([region_a[:, None].expand(p, q, -1), region_b[None].expand(p, q, -1)], dim=-1)
        weighted = (similarity[..., None] * pairs).permute(2, 0, 1)  # 2d×P×Q
        maps = [weighted, similarity[None]] + ([extra] if extra is not None else [])
        return F.adaptive_max_pool2d(torch.cat(maps)[None], self.pool)[0]


class ScottMatcher(nn.Module):
    """Same-object classifier on frozen backbone features.

    ``forward({"feats_a": B×C×Ha×Wa, "feats_b": B×C×Hb×Wb})`` returns

    ============== ============ ===================================================================
    ``mask_a``     B×Ha×Wa      co-salient mask of a, probabilities
    ``mask_b``     B×Hb×Wb      the same for b
    ``match_logit`` B           logit that a and b show the same object (``EMPTY_LOGIT`` if a mask
                                is empty)
    ``match_prob`` B            its sigmoid
    ``empty``      B (bool)     no foreground cell in a or in b
    ============== ============ ===================================================================
    """

    default_conf = {
        "input_dim": 120,   # backbone channels
        "dim": 96,          # CODER width d (the paper's 512 is for a from-pixels encoder)
        "stages": 3,        # CODER stages; stages 2.. exchange features between the branches
        "matcher_dim": 48,  # descriptors are projected to this width before pairing
        "pool": 12,         # K of the adaptive max-pool (paper: 64 on stride-32 maps of large images)
        "max_cells": 64,    # foreground cells per image entering the matcher
        "alpha": 0.35,      # foreground threshold on the masks (paper: validated; at 0.5, 8 % of
                            # held-out matching pairs had an empty mask)
    }

    def __init__(self, **conf):
        super().__init__()
        self.conf = merged_conf(self, conf)
        c = self.conf
        d = c["dim"]
        self.stages = nn.ModuleList([_block(c["input_dim"], d)] + [_block(2 * d, d) for _ in range(c["stages"] - 1)])
        self.segmentation_head = nn.Sequential(nn.Conv2d(2 * d, d, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(d, 1, 1))
        self.project = nn.Conv2d(d, c["matcher_dim"], 1)
        self.pairing = PairPooling(c["pool"])
        m = c["matcher_dim"]
        self.classifier = nn.Sequential(  # Φ, up to its last layer
            nn.Conv2d(2 * m + 2, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.decision = nn.Linear(64 + 6, 1)

    def encode(self, feats_a: torch.Tensor, feats_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CODER: both images' maps after the last stage (B×d×Ha×Wa, B×d×Hb×Wb)."""
        fa, fb = self.stages[0](feats_a), self.stages[0](feats_b)
        for stage in self.stages[1:]:
            fa, fb = stage(torch.cat([fa, _on_grid(fb, fa)], 1)), stage(torch.cat([fb, _on_grid(fa, fb)], 1))
        return fa, fb

    def classify(self, region_a: torch.Tensor, region_b: torch.Tensor, frozen_similarity: torch.Tensor) -> torch.Tensor:
        """Φ on both arrangements of the pair, averaged → a scalar logit (``EMPTY_LOGIT`` if empty).
        ``frozen_similarity``: P×Q cosine similarity of the backbone features of the same cells."""
        ab = self.pairing(region_a, region_b, frozen_similarity[None])
        if ab is None:
            return torch.tensor(EMPTY_LOGIT)
        m = region_a.shape[1]
        # the b→a arrangement: the two descriptor halves swapped, every map transposed (P↔Q)
        ba = torch.cat([ab[m:2 * m], ab[:m], ab[2 * m:]]).transpose(1, 2)
        both = torch.stack([ab, ba])
        maps = both[:, 2 * m:]  # 2×2×K×K: S and the frozen similarity
        stats = torch.cat([maps.amax((2, 3)), maps.amax(3).mean(2), maps.amax(2).mean(2)], 1)
        return self.decision(torch.cat([self.classifier(both), STATS_GAIN * stats], 1)).mean()

    def forward(self, data: dict) -> dict:
        fa, fb = self.encode(data["feats_a"], data["feats_b"])
        mask_a = torch.sigmoid(self.segmentation_head(torch.cat([fa, _on_grid(fb, fa)], 1)))[:, 0]
        mask_b = torch.sigmoid(self.segmentation_head(torch.cat([fb, _on_grid(fa, fb)], 1)))[:, 0]
        da, db = self.project(fa), self.project(fb)
        c = self.conf
        logits, empty = [], []
        for i in range(len(fa)):
            cells_a = foreground_cells(mask_a[i].detach(), c["alpha"], c["max_cells"])
            cells_b = foreground_cells(mask_b[i].detach(), c["alpha"], c["max_cells"])
            frozen = (F.normalize(gather_cells(data["feats_a"][i], cells_a), dim=1)
                      @ F.normalize(gather_cells(data["feats_b"][i], cells_b), dim=1).T)
            empty.append(len(cells_a) == 0 or len(cells_b) == 0)
            logits.append(self.classify(gather_cells(da[i], cells_a), gather_cells(db[i], cells_b), frozen))
        logit = torch.stack(logits)
        return {"mask_a": mask_a, "mask_b": mask_b, "match_logit": logit, "match_prob": torch.sigmoid(logit),
                "empty": torch.tensor(empty)}
