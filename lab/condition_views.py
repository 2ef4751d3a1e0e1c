"""Photometric views at test time: does showing the pair model both images in one canonical look help
across conditions? (issue 23)

For each condition folder of a `segswap eval conditions` work folder (seed 201), both images of every pair
(and of the benchmark's negatives) go through a view before the shipped model sees them:

- ``original``: as they are (what `eval conditions` measures);
- ``clahe``: OpenCV CLAHE on the L channel of Lab (clip 2, 8×8 tiles), colour kept — brings a night photo's
  dark range up and leaves a day photo almost unchanged;
- ``gray_clahe``: greyscale, then CLAHE (the colour a depiction drops is dropped from both);
- ``gray_blur_clahe``: greyscale, Gaussian blur σ = 1.5 px (a halftone's dots and an engraving's hatching
  average to tone), then CLAHE.

Per view and condition: mask IoU (threshold 0.5, both images) and correspondence error on the positives,
and the same / different AP of the matched fraction (paper Eq. 3 over a's cells) against the benchmark's
negatives. ``max`` combines views: each pair's highest matched fraction over the views.

    .venv/bin/python lab/condition_views.py /work/scratch/conditions --json views.json
    .venv/bin/python lab/condition_views.py /work/scratch/verify_cal_301 --seed 0 --json views_cal.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import average_precision_score
from tqdm import tqdm

import segswap
from segswap.evaluation.calibration import negative_pairs
from segswap.io import load_image, pixels_to_tensor, resize_for_model
from segswap.models.outputs import matched_fraction, similarity_score
from segswap.synth.cache import FeatureCache, build_cache

CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def clahe_colour(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[..., 0] = CLAHE.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def gray_clahe(rgb: np.ndarray, blur: float = 0.0) -> np.ndarray:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if blur:
        gray = cv2.GaussianBlur(gray, (0, 0), blur)
    return cv2.cvtColor(CLAHE.apply(gray), cv2.COLOR_GRAY2RGB)


VIEWS = {
    "original": lambda rgb: rgb,
    "clahe": clahe_colour,
    "gray_clahe": gray_clahe,
    "gray_blur_clahe": lambda rgb: gray_clahe(rgb, 1.5),
}


def fraction(pred: dict, fa, fb) -> float:
    """The matched fraction of a (paper Eq. 3 over a's cells)."""
    return float(matched_fraction(similarity_score(pred["mask_a"], pred["mask_b"], pred["flow_ab"], fa, fb), fa.shape[-2:])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="a `segswap eval conditions` work folder, or one synth folder")
    parser.add_argument("--seed", type=int, default=201, help="the negatives' seed (201: the benchmark's, 0: calibrate-verify's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    matcher = segswap.load()
    folders = ([args.work] if (args.work / "manifest.jsonl").is_file() else
               sorted(p for p in args.work.iterdir() if (p / "manifest.jsonl").is_file()))
    result = {}
    for folder in folders:
        cache = FeatureCache([build_cache(folder, matcher.backbone.name, matcher.size, show_progress=False)])
        n = len(cache)
        negatives, _ = negative_pairs(cache, args.seed)
        truth = cache.get(np.arange(n), keys=("mask_a", "mask_b", "flow_ab"))
        images = {(i, s): resize_for_model(load_image(cache.pair_dirs[i] / f"{s}.jpg"), matcher.size) for i in range(n) for s in "ab"}
        labels = np.r_[np.ones(n), np.zeros(len(negatives))]
        row, fractions = {}, {}
        for view, transform in tqdm(VIEWS.items(), desc=folder.name, unit="view"):
            feats = {key: matcher.features(pixels_to_tensor(transform(im))) for key, im in images.items()}
            scores, ious, errors = [], [], []
            for a in range(n):
                pred = matcher.predict(feats[a, "a"], feats[a, "b"])
                scores.append(fraction(pred, feats[a, "a"], feats[a, "b"]))
                for side in "ab":
                    p, g = pred[f"mask_{side}"][0].numpy() > 0.5, np.asarray(truth[f"mask_{side}"][a]) > 0.5
                    ious.append((p & g).sum() / max((p | g).sum(), 1))
                h, w = g.shape
                err = np.linalg.norm((pred["flow_ab"][0].numpy() - np.asarray(truth["flow_ab"][a])) * [w, h], axis=-1)
                errors += err[np.asarray(truth["mask_a"][a]) > 0.5].tolist()
            for a, b in negatives:
                fa, fb = feats[int(a), "a"], feats[int(b), "b"]
                scores.append(fraction(matcher.predict(fa, fb), fa, fb))
            fractions[view] = np.array(scores)
            row[view] = {"mask_iou": float(np.mean(ious)), "corr_err_cells": float(np.mean(errors)),
                         "pair_score_ap": float(average_precision_score(labels, fractions[view]))}
        row["max"] = {"pair_score_ap": float(average_precision_score(labels, np.max(list(fractions.values()), axis=0)))}
        result[folder.name] = row
        print(folder.name, {v: (round(r.get("mask_iou", float("nan")), 3), round(r["pair_score_ap"], 3)) for v, r in row.items()}, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
