"""Rule M1 (lab/rules.md, 2026-12-07): do keypoint inliers improve `segswap pair`'s masks?

Candidate: each mask raised where inlier keypoints lie, m' = max(m, support), support = the inliers' density
(a Gaussian of σ = one 16-px cell at the model's size around each inlier, clipped to 1), only when the pair
has at least ``--min-inliers`` inliers. Both arms run ``Matcher.match`` with the shipped defaults (five
views, the objectness prior) and the default keypoint matcher. MSRC pairs and synthetic pairs as
lab/pair_prior.py picks them.

    .venv/bin/python lab/pair_keypoint_support.py --synthetic W/test_coco320 W/test_unsup320 --min-inliers N
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segswap import load
from segswap.evaluation.coseg import read_coseg_benchmark, read_truth
from segswap.evaluation.metrics import image_scores
from segswap.grid import STRIDE
from segswap.synth.reader import listed_pairs, read_masks

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg"


def support(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    canvas = np.zeros(shape, np.float32)
    for x, y in points:
        if 0 <= int(y) < shape[0] and 0 <= int(x) < shape[1]:
            canvas[int(y), int(x)] = 1.0
    blurred = cv2.GaussianBlur(canvas, (0, 0), sigma)
    peak = 1.0 / (2 * np.pi * sigma**2)  # one point's peak: one inlier reaches 1 at its place
    return np.clip(blurred / peak, 0, 1)


def with_support(result: dict, min_inliers: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    found = result["keypoints"]
    if found is None or found["geometry"].count < min_inliers:
        return result["mask_a"], result["mask_b"]
    inliers = found["matches"][found["inliers"]]
    out = []
    for side, cols in (("a", slice(0, 2)), ("b", slice(2, 4))):
        mask = result[f"mask_{side}"]
        sigma = STRIDE * max(mask.shape) / size
        out.append(np.maximum(mask, support(inliers[:, cols], mask.shape, sigma)))
    return out[0], out[1]


def iou(pred, truth):
    pred, truth = pred >= 0.5, truth >= 0.5
    union = (pred | truth).sum()
    return float((pred & truth).sum() / union) if union else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=Path, nargs="+", required=True)
    parser.add_argument("--msrc", type=Path, default=MSRC)
    parser.add_argument("--min-inliers", type=int, required=True)
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    matcher = load()
    rows = {"msrc": [], "synthetic": []}
    supported = {"msrc": 0, "synthetic": 0}
    for group, items in tqdm(read_coseg_benchmark(args.msrc).items(), desc="msrc", unit="group"):
        chosen = items[:7]
        truths = [read_truth(i.truth) for i in chosen]
        for k in range(len(chosen) - 1):
            result = matcher.match(chosen[k].image, chosen[k + 1].image)
            boosted = with_support(result, args.min_inliers, matcher.size)
            supported["msrc"] += boosted[0] is not result["mask_a"]
            for side, j, new in (("a", k, boosted[0]), ("b", k + 1, boosted[1])):
                _, plain = image_scores(result[f"mask_{side}"], truths[j])
                _, fused = image_scores(new, truths[j])
                if plain is not None:
                    rows["msrc"].append((plain, fused))
    for folder in args.synthetic:
        for entry in tqdm(listed_pairs(folder)[::args.every], desc=folder.name, unit="pair"):
            pair = folder / entry["id"]
            if entry.get("kind", "positive") != "positive" or not (pair / "a.jpg").is_file():
                continue
            result = matcher.match(pair / "a.jpg", pair / "b.jpg")
            boosted = with_support(result, args.min_inliers, matcher.size)
            supported["synthetic"] += boosted[0] is not result["mask_a"]
            for side, new, truth in zip("ab", boosted, read_masks(pair)):
                rows["synthetic"].append((iou(result[f"mask_{side}"], truth), iou(new, truth)))
    report = {name: {"images": len(r), "plain": float(np.mean([x[0] for x in r])),
                     "with_support": float(np.mean([x[1] for x in r])), "pairs_supported": supported[name]}
              for name, r in rows.items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
