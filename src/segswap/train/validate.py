"""Validation on held-out synthetic pairs: mask IoU, correspondence error in cells, false-positive area."""

from __future__ import annotations

import numpy as np
import torch

from .cache import FeatureCache
from .mining import random_negatives


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


class CosegPairValidation:
    """Pairwise validation on a co-segmentation benchmark (e.g. ``msrc_coseg``): in each group, the
    first ``pairs_per_group`` consecutive image pairs (by name); each pair's cycle-consistent masks,
    upsampled to the images, are scored against both images' ground truth (J, ignore label excluded).

    Features are computed once, so a validation costs only the model's forward passes.
    """

    def __init__(self, root, backbone: str, size: int, pairs_per_group: int = 6):
        from ..backbone import get_backbone
        from ..evaluation.coseg import read_coseg_benchmark, read_truth
        from ..io import load_image, pixels_to_tensor, resize_for_model

        extractor = get_backbone(backbone)
        self.pairs: dict[str, list[tuple[int, int]]] = {}
        self.features, self.truth = [], []
        for group, items in read_coseg_benchmark(root).items():
            chosen = items[: pairs_per_group + 1]
            first = len(self.features)
            for item in chosen:
                self.features.append(extractor(pixels_to_tensor(resize_for_model(load_image(item.image), size))))
                self.truth.append(read_truth(item.truth))
            self.pairs[group] = [(first + k, first + k + 1) for k in range(len(chosen) - 1)]

    @torch.inference_mode()
    def __call__(self, model) -> dict:
        """Mean J per group and ``mean`` over groups (fractions)."""
        from ..evaluation.metrics import image_scores
        from ..models.outputs import cycle_consistent_mask, upsample_mask

        model.eval()
        per_group = {}
        for group, pairs in self.pairs.items():
            scores = []
            for i, j in pairs:
                out = model({"feats_a": self.features[i], "feats_b": self.features[j]})
                for k, mask, other, flow in ((i, "mask_a", "mask_b", "flow_ab"), (j, "mask_b", "mask_a", "flow_ba")):
                    cycle = cycle_consistent_mask(out[mask], out[other], out[flow])[0]
                    h, w = self.truth[k].shape
                    _, jaccard = image_scores(upsample_mask(cycle, (w, h)), self.truth[k])
                    if jaccard is not None:
                        scores.append(jaccard)
            per_group[group] = float(np.mean(scores)) if scores else float("nan")
        per_group["mean"] = float(np.nanmean(list(per_group.values())))
        return per_group


@torch.inference_mode()
def validate_scott(model, cache: FeatureCache, indices: np.ndarray, seed: int, classes: dict, batch_size: int = 16) -> dict:
    """SCOTT on held-out pairs: mask IoU on positives; match precision/recall/F1 at the threshold with
    the best F1 here (``val_threshold``, which `segswap export` records for `segswap verify`) and
    average precision, against as many negatives, half of them of the same object class."""
    from ..evaluation.metrics import best_f1_threshold, classification_scores
    from .mining import same_class_negatives

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
