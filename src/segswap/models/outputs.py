"""Reading a pair model's output dict (:class:`~segswap.models.transformer.SegSwapTransformer` gives
the keys and shapes): cycle-consistent masks, the paper's similarity score and the matched fraction
of the query, masks at an image's size; and :class:`FlipAveraged`, the same outputs averaged with
those of the mirrored pair.

Shared by the pair API, collections, evaluation and training's validation, which all read outputs
the same way.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from .layers import read_through_flow


def cycle_consistent_mask(mask: torch.Tensor, mask_other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Own mask × the other image's mask read where the flow points (B×h×w)."""
    return mask * read_through_flow(mask_other[:, None], flow)[:, 0]


def upsample_mask(mask_tokens: torch.Tensor, size) -> np.ndarray:
    """h×w token mask → float32 H×W at ``size`` = (width, height), bilinear."""
    m = mask_tokens.float().numpy()
    return np.clip(cv2.resize(m, tuple(int(s) for s in size), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def similarity_score(mask_q, mask_t, flow_qt, feats_q, feats_t) -> torch.Tensor:
    """Paper Eq. 3, query q against target t, per batch item → B scores.

    S = Σ over query cells of  M_q(i) · M_t(C(i)) · cos(F_q(i), F_t(C(i))),  keeping, as the authors'
    code does, only the best query cell for each target cell it lands in (so a region of the query
    cannot score many times on one target cell). S(q, t) ≠ S(t, q) in general; retrieval uses the
    query's direction.
    """
    b, hq, wq = mask_q.shape
    ht, wt = mask_t.shape[1:]
    joint = mask_q * read_through_flow(mask_t[:, None], flow_qt)[:, 0]
    feats_at = read_through_flow(feats_t, flow_qt)
    cosine = (feats_q * torch.nn.functional.normalize(feats_at, dim=1)).sum(dim=1)
    contribution = (joint * cosine).flatten(1)  # B×(hq·wq)
    cx = (flow_qt[..., 0] * wt).long().clamp(0, wt - 1)
    cy = (flow_qt[..., 1] * ht).long().clamp(0, ht - 1)
    target_cell = (cy * wt + cx).flatten(1)
    best = torch.full((b, ht * wt), -math.inf, dtype=contribution.dtype)
    best = best.scatter_reduce(1, target_cell, contribution, reduce="amax", include_self=True)
    return torch.where(torch.isfinite(best), best, torch.zeros_like(best)).sum(dim=1)


def matched_fraction(score, query_grid) -> torch.Tensor | float:
    """Eq. 3's score over the query's number of cells (``query_grid`` = its h, w): the share of the
    query that matches, independent of the input size. What `segswap search` calibrates its verdict on."""
    return score / (int(query_grid[0]) * int(query_grid[1]))


class FlipAveraged(torch.nn.Module):
    """A pair model run on the pair and on the pair mirrored left-right, its masks and flows averaged
    (test-time augmentation; same input and output dicts as the model)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, data: dict) -> dict:
        out = self.model(data)
        mirrored = self.model({"feats_a": data["feats_a"].flip(-1), "feats_b": data["feats_b"].flip(-1)})
        merged = {}
        for key in ("mask_a", "mask_b"):
            merged[key] = (out[key] + mirrored[key].flip(-1)) / 2
        for key in ("flow_ab", "flow_ba"):
            back = mirrored[key].flip(-2).clone()
            back[..., 0] = 1 - back[..., 0]
            merged[key] = (out[key] + back) / 2
        return merged
