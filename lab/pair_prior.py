"""`segswap pair` with and without the objectness prior (`--prior`), on MSRC pairs and held-out synthetic pairs.

    .venv/bin/python lab/pair_prior.py --synthetic W/test_coco320 W/test_unsup320 [--msrc ../shared/data/eval/msrc_coseg]

Both arms run ``Matcher.match`` with the shipped defaults (views at five scales); the prior arm averages
each mask with its image's saliency map (foreground at ≥ 0.5, as for every mask), computed once per
image. MSRC: in each group the first seven images by name, six consecutive pairs (as the training's
co-segmentation validation picks them), J of both images against the ground truth, mean over images.
Synthetic (pairs made with seeds never used in training): mask IoU of both images of each positive
pair against its full-resolution object masks, and on negative pairs the mean predicted area.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segswap import load
from segswap.backbone.objectness import get_prior
from segswap.evaluation.coseg import read_coseg_benchmark, read_truth
from segswap.evaluation.metrics import image_scores
from segswap.io import load_image
from segswap.synth.reader import listed_pairs, read_masks

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg"


def with_prior(mask: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    return (mask + saliency) / 2  # what Matcher.match(prior=True) does


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    pred, truth = pred >= 0.5, truth >= 0.5
    union = (pred | truth).sum()
    return float((pred & truth).sum() / union) if union else 1.0


def msrc_pairs(root: Path, matcher, prior, per_group: int = 6) -> dict:
    plain, fused, groups = [], [], {}
    for group, items in tqdm(read_coseg_benchmark(root).items(), desc="msrc", unit="group"):
        chosen = items[:per_group + 1]
        saliency = [prior(load_image(i.image))["saliency"] for i in chosen]
        truths = [read_truth(i.truth) for i in chosen]
        rows = []
        for k in range(len(chosen) - 1):
            result = matcher.match(chosen[k].image, chosen[k + 1].image, prior=False)
            for side, j in (("a", k), ("b", k + 1)):
                _, j_plain = image_scores(result[f"mask_{side}"], truths[j])
                _, j_fused = image_scores(with_prior(result[f"mask_{side}"], saliency[j]), truths[j])
                if j_plain is not None:
                    rows.append((j_plain, j_fused))
        plain += [r[0] for r in rows]
        fused += [r[1] for r in rows]
        groups[group] = (float(np.mean([r[0] for r in rows])), float(np.mean([r[1] for r in rows])))
    return {"images": len(plain), "J": float(np.mean(plain)), "J_prior": float(np.mean(fused)), "groups": groups}


def synthetic_pairs(folders: list[Path], matcher, prior, every: int = 1) -> dict:
    plain, fused, neg_plain, neg_fused = [], [], [], []
    for folder in folders:
        for entry in tqdm(listed_pairs(folder)[::every], desc=folder.name, unit="pair"):
            pair = folder / entry["id"]
            if not (pair / "a.jpg").is_file():
                continue
            images = [load_image(pair / "a.jpg"), load_image(pair / "b.jpg")]
            result = matcher.match(images[0], images[1], prior=False)
            saliency = [prior(image)["saliency"] for image in images]
            masks = [result["mask_a"], result["mask_b"]]
            if entry.get("kind", "positive") == "positive":
                truths = read_masks(pair)
                plain += [iou(m, t) for m, t in zip(masks, truths)]
                fused += [iou(with_prior(m, s), t) for m, s, t in zip(masks, saliency, truths)]
            else:
                neg_plain += [float((m >= 0.5).mean()) for m in masks]
                neg_fused += [float((with_prior(m, s) >= 0.5).mean()) for m, s in zip(masks, saliency)]
    return {"images": len(plain), "IoU": float(np.mean(plain)), "IoU_prior": float(np.mean(fused)),
            "negative_images": len(neg_plain),
            "negative_area": float(np.mean(neg_plain)) if neg_plain else None,
            "negative_area_prior": float(np.mean(neg_fused)) if neg_fused else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=Path, nargs="+", required=True, help="`segswap synth` test folders")
    parser.add_argument("--msrc", type=Path, default=MSRC)
    parser.add_argument("--every", type=int, default=1, help="use every n-th synthetic pair of each folder")
    args = parser.parse_args()
    matcher, prior = load(), get_prior()
    report = {"msrc": msrc_pairs(args.msrc, matcher, prior),
              "synthetic": synthetic_pairs(args.synthetic, matcher, prior, args.every), "every": args.every}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
