"""Models on synthetic pairs they were not trained on: a pair model's mask IoU and correspondence error
in cells, SCOTT's same-object precision and recall.

``segswap eval synthetic`` runs :func:`evaluate_synthetic` on `segswap synth` folders made with another
seed than the training pairs (their features are cached beside them, as `segswap train` does);
training validates on its held-out pairs with :func:`validate_synthetic` and :func:`validate_scott`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models.outputs import FlipAveraged
from ..synth.cache import FeatureCache, build_cache
from ..synth.negatives import random_negatives, same_class_negatives
from .metrics import best_f1_threshold, classification_scores


def evaluate_synthetic(pairs_dirs, matcher, seed: int = 0, show_progress: bool = True, flip: bool = False) -> dict:
    """The metrics of :func:`validate_synthetic` over every pair of the folders,
    with as many negatives (image a of one pair, image b of another); the pairs must have been made at
    the matcher's input size. ``flip``: average with the mirrored pair (:class:`~segswap.models.outputs.FlipAveraged`)."""
    caches = [build_cache(Path(p), matcher.backbone.name, matcher.size, show_progress=show_progress) for p in pairs_dirs]
    cache = FeatureCache(caches)
    model = FlipAveraged(matcher.model) if flip else matcher.model
    metrics = validate_synthetic(model, cache, np.arange(len(cache)), seed)
    return {"pairs": len(cache), "folders": [str(p) for p in pairs_dirs], "model": matcher.name,
            "weights": matcher.weights, "size": matcher.size, "flip": flip,
            **{key.removeprefix("val_"): value for key, value in metrics.items()}}


@torch.inference_mode()
def validate_synthetic(model, cache: FeatureCache, indices: np.ndarray, seed: int, batch_size: int = 16) -> dict:
    """Mean mask IoU (threshold 0.5) over both images of held-out positives; correspondence error in
    cells inside the ground-truth mask (mean, median, and the fraction of cells within one cell); and
    the mean predicted mask area on held-out negatives."""
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
        "val_corr_err_median": float(np.median(errors)) if errors else float("nan"),
        "val_within_1_cell": float(np.mean(np.array(errors) <= 1)) if errors else float("nan"),
        "val_negative_area": float(np.mean(negative_area)) if negative_area else float("nan"),
    }


@torch.inference_mode()
def validate_scott(model, cache: FeatureCache, indices: np.ndarray, seed: int, classes: dict, batch_size: int = 16) -> dict:
    """SCOTT on held-out pairs: mask IoU on positives; match precision/recall/F1 at the threshold with
    the best F1 here (``val_threshold``, which `segswap export` records for `segswap verify`) and
    average precision, against as many negatives, half of them of the same object class."""
    model.eval()
    rng = np.random.default_rng([seed, 777])
    hard = same_class_negatives(rng, {i: classes[i] for i in map(int, indices)}, len(indices) // 2, cache)
    negatives = np.concatenate([hard, random_negatives(rng, indices, len(indices) - len(hard), cache)])
    ious, probabilities, labels = [], [], []
    for start in range(0, len(indices), batch_size):
        batch = cache.get(indices[start:start + batch_size])
        out = model({"feats_a": batch["feats_a"], "feats_b": batch["feats_b"]})
        for side in ("a", "b"):
            pred, gt = out[f"mask_{side}"] > 0.5, batch[f"mask_{side}"] > 0.5
            ious += ((pred & gt).flatten(1).sum(1) / (pred | gt).flatten(1).sum(1).clamp(min=1)).tolist()
        probabilities += out["match_prob"].tolist()
        labels += [1] * len(out["match_prob"])
    for start in range(0, len(negatives), batch_size):
        pairs = negatives[start:start + batch_size]
        fa = cache.get(pairs[:, 0], keys=("feats_a",))["feats_a"]
        fb = cache.get(pairs[:, 1], keys=("feats_b",))["feats_b"]
        probabilities += model({"feats_a": fa, "feats_b": fb})["match_prob"].tolist()
        labels += [0] * len(pairs)
    scores = classification_scores(probabilities, labels, best_f1_threshold(probabilities, labels))
    return {"val_iou": float(np.mean(ious)), "val_f1": scores["f1"], "val_precision": scores["precision"],
            "val_recall": scores["recall"], "val_ap": scores["average_precision"], "val_threshold": scores["threshold"]}
