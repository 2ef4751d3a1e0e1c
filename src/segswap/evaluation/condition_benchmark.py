"""The condition benchmark (`segswap eval conditions`): how the pair model and `segswap verify` hold up
when one image of a pair changes condition (night, haze, an engraving...).

For each condition it makes held-out synthetic pairs with `segswap synth` (seed
:data:`BENCHMARK_SEED`, never used for training or calibration), with no style, so the only change
between the two images besides placement is the condition; "none" is the same-condition reference.
Every condition gets the same composites (the condition draws its own random stream), so the columns
differ by the condition alone. Per condition:

* mask IoU and correspondence error (cells) of the pair model on the positives;
* same / different average precision of the pair score (paper Eq. 3, as the matched fraction `segswap
  search` uses, one view) and of the score `segswap verify` decides by (by default the pair score of its
  own weights over `segswap pair`'s views; SCOTT's probability with ``--verify-by scott``), on the
  positives against as many non-matching pairs, half of them different objects of a common class;
* `segswap verify`'s precision and recall at its calibrated threshold;
* for each keypoint matcher asked for, the same / different average precision of its homography inliers
  (and their median on the positives).

The result holds no timing or path that changes between runs, and numbers are rounded to 4 decimals,
so the same command gives the same JSON.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import SegswapError
from ..synth import generate
from ..synth.cache import FeatureCache, build_cache
from ..synth.conditions import CONDITIONS, group_of
from .calibration import matched_fractions, negative_pairs, verdict_scores
from .keypoint_evidence import inlier_counts
from .metrics import classification_scores
from .synthetic import validate_synthetic

#: Seeds: 1 and 2 made the training pairs, 101/102 the search calibration, 301 the verify calibration.
BENCHMARK_SEED = 201
#: Pairs per condition by default: the eleven folders and their scoring take about 25 minutes on 2 cores
#: with verify's default verdict (five views a pair), about 4 with SCOTT's.
DEFAULT_PAIRS = 60
REFERENCE = "none"
DECIMALS = 4


def evaluate_conditions(segments, backgrounds, work, matcher, verifier, *, n: int = DEFAULT_PAIRS,
                        conditions: tuple[str, ...] | None = None, seed: int = BENCHMARK_SEED, workers: int | None = None,
                        keypoints: tuple[str, ...] = (), show_progress: bool = True) -> dict:
    """The benchmark over ``conditions`` (default all) and the same-condition reference, with pairs made
    (or reused, `segswap synth` resumes) in ``work/<condition>``, at the matcher's input size; ``keypoints``:
    the keypoint matchers whose inliers are reported beside the pair model."""
    names = (REFERENCE,) + tuple(conditions if conditions is not None else CONDITIONS)
    unknown = [c for c in names[1:] if c not in CONDITIONS]
    if unknown:
        raise SegswapError(f"unknown condition {unknown[0]!r}; choose from {', '.join(CONDITIONS)}")
    if n < 4:
        raise SegswapError(f"-n must be at least 4 pairs per condition (got {n})")
    work = Path(work)
    rows = {}
    start = time.perf_counter()
    for k, name in enumerate(names):
        if show_progress:
            _announce(k, len(names), name, start)
        folder = work / name
        generate(segments, backgrounds, folder, n, seed=seed, size=matcher.size, workers=workers, style=False,
                 conditions=() if name == REFERENCE else (name,), condition_rate=1.0, progress=show_progress)
        rows[name] = _measure(folder, matcher, verifier, seed, keypoints, show_progress)
        rows[name]["group"] = "same condition" if name == REFERENCE else group_of(name)
    reference_iou = rows[REFERENCE]["mask_iou"]
    for row in rows.values():
        row["iou_drop"] = _round(reference_iou - row["mask_iou"])
    return {
        "benchmark": "conditions", "seed": seed, "pairs_per_condition": n, "size": matcher.size,
        "model": matcher.name, "weights": matcher.weights, "weights_sha256": matcher.weights_sha256,
        "verifier": {"by": verifier.by, "weights": verifier.weights, "weights_sha256": verifier.weights_sha256,
                     "threshold": _round(verifier.threshold), "threshold_source": verifier.threshold_source},
        "keypoints": list(keypoints),
        "conditions": rows,
        "summary": {
            "min_pair_score_ap": min(r["pair_score_ap"] for r in rows.values()),
            "min_verify_ap": min(r["verify_ap"] for r in rows.values()),
            "max_iou_drop": max(r["iou_drop"] for r in rows.values()),
        },
    }


def _measure(folder: Path, matcher, verifier, seed: int, keypoints: tuple[str, ...], show_progress: bool) -> dict:
    from sklearn.metrics import average_precision_score

    cache = FeatureCache([build_cache(folder, matcher.backbone.name, matcher.size, show_progress=show_progress)])
    # verdicts other than SCOTT read the pair folders' images (views, keypoints); SCOTT reads features at its backbone
    if verifier.by != "scott" or (verifier.backbone.name, verifier.size) == (matcher.backbone.name, matcher.size):
        verifier_cache = cache
    else:
        verifier_cache = FeatureCache([build_cache(folder, verifier.backbone.name, verifier.size, show_progress=show_progress)])
    indices = np.arange(len(cache))
    quality = validate_synthetic(matcher.model, cache, indices, seed)
    negatives, hard = negative_pairs(cache, seed)
    labels = [1] * len(indices) + [0] * len(negatives)
    pair_scores = np.r_[matched_fractions(matcher, cache, indices, indices),
                        matched_fractions(matcher, cache, negatives[:, 0], negatives[:, 1])]
    verdict_inputs = np.r_[np.column_stack([indices, indices]), negatives]
    scores = verdict_scores(verifier, verifier_cache, verdict_inputs[:, 0], verdict_inputs[:, 1], show_progress)
    verdict = classification_scores(scores.tolist(), labels, verifier.threshold)
    images = [(cache.pair_dirs[int(i)] / "a.jpg", cache.pair_dirs[int(j)] / "b.jpg") for i, j in verdict_inputs]
    by_keypoints = {}
    for name in keypoints:
        inliers = inlier_counts(name, images, show_progress, desc=f"{name} {folder.name}")
        by_keypoints[name] = {"inliers_ap": _round(average_precision_score(labels, inliers)),
                              "median_inliers_positives": _round(np.median(inliers[:len(indices)]))}
    return {
        "positives": int(len(indices)), "negatives": int(len(negatives)), "same_class_negatives": int(len(hard)),
        "mask_iou": _round(quality["val_iou"]), "corr_err_cells": _round(quality["val_corr_err_cells"]),
        "within_1_cell": _round(quality["val_within_1_cell"]),
        "pair_score_ap": _round(average_precision_score(labels, pair_scores)), "verify_ap": _round(verdict["average_precision"]),
        "verify_precision": _round(verdict["precision"]), "verify_recall": _round(verdict["recall"]),
        "keypoints": by_keypoints,
    }


def _round(value: float) -> float:
    return float(round(float(value), DECIMALS))


def _announce(k: int, total: int, name: str, start: float) -> None:
    """One line per condition on stderr, with the time left estimated from the conditions done."""
    import sys

    elapsed = time.perf_counter() - start
    eta = f", about {elapsed / k * (total - k) / 60:.0f} min left" if k else ""
    print(f"conditions: {k + 1}/{total} {name}{eta}", file=sys.stderr, flush=True)
