"""Validation on held-out synthetic pairs: mask IoU, correspondence error in cells, false-positive area."""

from __future__ import annotations

import numpy as np
import torch

from .cache import FeatureCache
from .mining import random_negatives


@torch.inference_mode()
def validate_synthetic(model, cache: FeatureCache, indices: np.ndarray, seed: int, batch_size: int = 16) -> dict:
    """Mean mask IoU (threshold 0.5) over both images of held-out positives, mean correspondence error
    (cells, inside the ground-truth mask), and the mean predicted mask area on held-out negatives."""
    model.eval()
    ious, errors, negative_area = [], [], []
    negatives = random_negatives(np.random.default_rng([seed, 777]), indices, len(indices), cache)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch = cache.get(chunk)
        out = model({"feats_a": batch["feats_a"], "feats_b": batch["feats_b"]})
        for side, flow in (("a", "flow_ab"), ("b", "flow_ba")):
            pred, gt = out[f"mask_{side}"] > 0.5, batch[f"mask_{side}"] > 0.5
            inter = (pred & gt).flatten(1).sum(1).float()
            union = (pred | gt).flatten(1).sum(1).float().clamp(min=1)
            ious += (inter / union).tolist()
            h, w = gt.shape[1:]
            err = ((out[flow] - batch[flow]) * torch.tensor([w, h])).norm(dim=-1)
            errors += err[gt].tolist()
        pairs = negatives[start:start + batch_size]  # a of one held-out pair with b of another
        if len(pairs):
            fa = cache.get(pairs[:, 0], keys=("feats_a",))["feats_a"]
            fb = cache.get(pairs[:, 1], keys=("feats_b",))["feats_b"]
            neg = model({"feats_a": fa, "feats_b": fb})
            negative_area += ((neg["mask_a"] > 0.5).flatten(1).float().mean(1)).tolist()
    return {
        "val_iou": float(np.mean(ious)),
        "val_corr_err_cells": float(np.mean(errors)) if errors else float("nan"),
        "val_negative_area": float(np.mean(negative_area)) if negative_area else float("nan"),
    }
