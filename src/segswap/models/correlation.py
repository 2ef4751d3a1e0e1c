"""A training-free pair model: soft mutual nearest neighbours of the frozen backbone features.

It is NC-Net without the learned neighbourhood consensus: the 2-D correlation of the two feature maps
is softmax-normalised along each image, a cell's mask value is its best *mutual* match probability
(high only when a and b choose each other unambiguously) and its correspondence is the soft-argmax of
its row. It is the floor every trained model must beat and a working matcher before training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import merged_conf


def cell_centres(h: int, w: int, device=None) -> torch.Tensor:
    """(h·w)×2 cell centres, (x, y) normalised to [0, 1]."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)


def soft_argmax_flows(logits: torch.Tensor, grid_a: tuple[int, int], grid_b: tuple[int, int],
                      radius: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flows (B×Ha×Wa×2, B×Hb×Wb×2) from match logits B×Na×Nb: the expected cell centre under the
    softmax over the other image's cells — all of them, or with ``radius`` only the (2r+1)² cells
    around each row's best one."""
    flow_ab = _expected_centre(logits, grid_b, radius)
    flow_ba = _expected_centre(logits.transpose(1, 2), grid_a, radius)
    return flow_ab.view(-1, *grid_a, 2), flow_ba.view(-1, *grid_b, 2)


def _expected_centre(logits: torch.Tensor, grid: tuple[int, int], radius: int | None) -> torch.Tensor:
    """For each row of ``logits`` (B×N×M over an h×w grid of M cells): the cell centre expected under
    the row's softmax, over every cell or, with ``radius``, over the cells within ``radius`` (in x and
    y) of the row's best one → B×N×2."""
    centres = cell_centres(*grid, device=logits.device)
    if radius is None:
        return logits.softmax(dim=2) @ centres
    # Only the window's (2r+1)² logits are read: masking the whole N×M matrix to -inf instead cost
    # 30 ms of a 480-px pair's 200 (lab/pair_profile.py).
    h, w = grid
    best = logits.argmax(dim=2)
    offsets = torch.arange(-radius, radius + 1, device=logits.device)
    ys = (best // w)[..., None, None] + offsets[:, None]  # B×N×K×1
    xs = (best % w)[..., None, None] + offsets[None, :]  # B×N×1×K
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).flatten(2)
    cells = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).flatten(2)  # B×N×K², clamped cells masked below
    window = logits.gather(2, cells).masked_fill(~inside, -math.inf)
    return (window.softmax(dim=2)[..., None] * centres[cells]).sum(dim=2)


def cell_similarity(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every cell of a (B×C×Ha×Wa, L2-normalised) with every cell of b → B×Na×Nb."""
    return torch.einsum("bcn,bcm->bnm", fa.flatten(2), fb.flatten(2))


class CorrelationMatcher(nn.Module):
    """Same inputs and outputs as :class:`segswap.models.transformer.SegSwapTransformer`; no weights."""

    default_conf = {
        "temperature": 0.02,  # softmax temperature on cosine similarities
    }

    def __init__(self, **conf):
        super().__init__()
        self.conf = merged_conf(self, conf)

    def forward(self, data: dict) -> dict:
        fa, fb = data["feats_a"], data["feats_b"]
        (b, _, ha, wa), (_, _, hb, wb) = fa.shape, fb.shape
        sim = cell_similarity(fa, fb) / self.conf["temperature"]
        p_ab = sim.softmax(dim=2)  # each a-cell's distribution over b
        p_ba = sim.softmax(dim=1)  # each b-cell's distribution over a
        mutual = p_ab * p_ba
        flow_ab = p_ab @ cell_centres(hb, wb, fa.device)
        flow_ba = p_ba.transpose(1, 2) @ cell_centres(ha, wa, fa.device)
        return {
            "mask_a": mutual.amax(dim=2).view(b, ha, wa),
            "mask_b": mutual.amax(dim=1).view(b, hb, wb),
            "flow_ab": flow_ab.view(b, ha, wa, 2),
            "flow_ba": flow_ba.view(b, hb, wb, 2),
        }
