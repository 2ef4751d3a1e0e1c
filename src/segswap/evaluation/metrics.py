"""Co-segmentation metrics as the co-segmentation papers compute them (SSNM, SegSwap).

P (precision, really pixel accuracy) is averaged over images; J (Jaccard index, IoU of the object) is
averaged over the images whose ground truth holds some object, since the IoU of an empty object is
undefined. Pixels labelled :data:`IGNORE` in the ground truth count for neither.
"""

from __future__ import annotations

import numpy as np

from ..errors import SegswapError

#: Ground-truth values of the co-segmentation layout.
OBJECT, BACKGROUND, IGNORE = 255, 0, 128


def foreground(pred: np.ndarray) -> np.ndarray:
    """A predicted mask as booleans: bool as is, floats at ≥ 0.5, integers (0/255 or 0/1) where non-zero."""
    pred = np.asarray(pred)
    if pred.dtype == bool:
        return pred
    if np.issubdtype(pred.dtype, np.floating):
        return pred >= 0.5
    return pred != 0


def image_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float | None, float | None]:
    """(P, J) of one predicted mask against one ground truth (H×W, 255/0/128).

    P is None when every pixel is ignored; J is None when the ground truth has no object pixel.
    """
    pred, gt = foreground(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise SegswapError(f"predicted mask is {pred.shape[1]}×{pred.shape[0]} px but the ground truth is "
                           f"{gt.shape[1]}×{gt.shape[0]}")
    valid = gt != IGNORE
    truth = gt == OBJECT
    n_valid = int(valid.sum())
    p = float((pred == truth)[valid].sum() / n_valid) if n_valid else None
    if not truth.any():
        return p, None
    inter = int((pred & truth)[valid].sum())
    union = int((pred | truth)[valid].sum())
    return p, inter / union


def coseg_scores(pred_masks, gt_masks) -> dict:
    """Scores of a set of images (e.g. one group): ``P``, ``J``, ``n`` and the ``per_image`` (P, J) pairs.

    ``P`` averages over images with at least one non-ignored pixel, ``J`` over images with a non-empty
    ground truth; either is None when no image qualifies. ``n`` counts the images.
    """
    pred_masks, gt_masks = list(pred_masks), list(gt_masks)
    if len(pred_masks) != len(gt_masks):
        raise SegswapError(f"{len(pred_masks)} predicted masks for {len(gt_masks)} ground-truth masks")
    per_image = [image_scores(p, g) for p, g in zip(pred_masks, gt_masks)]
    ps = [p for p, _ in per_image if p is not None]
    js = [j for _, j in per_image if j is not None]
    return {
        "P": float(np.mean(ps)) if ps else None,
        "J": float(np.mean(js)) if js else None,
        "n": len(per_image),
        "per_image": per_image,
    }


def classification_scores(probabilities, labels, threshold: float) -> dict:
    """Precision, recall and F1 of "match" at ``probability >= threshold``, and the threshold-free
    average precision, for binary ``labels`` (1 = same object / place)."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support

    probabilities, labels = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=int)
    if labels.min(initial=1) == labels.max(initial=0):
        raise SegswapError("classification scores need both matching and non-matching pairs")
    precision, recall, f1, _ = precision_recall_fscore_support(labels, probabilities >= threshold, average="binary",
                                                               zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "average_precision": float(average_precision_score(labels, probabilities)), "threshold": float(threshold)}


def best_f1_threshold(probabilities, labels) -> float:
    """The decision threshold with the highest F1 on these pairs (a calibration, not a test score)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(labels, dtype=int), np.asarray(probabilities, dtype=float))
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])
