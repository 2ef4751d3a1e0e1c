"""Where a pair model fails on held-out synthetic pairs, and how its correspondences err.

For a weights file and `segswap synth` folders it was not trained on (or the run's held-out split
with ``--held-out``): mask IoU at 0.5 and at the best threshold per image, by object size (cells),
restyling (its own and the other image's), number of objects and area change (the shared cells in
the larger image over those in the smaller), each with its share of missed images (IoU < 0.1); IoU at
a few global thresholds; and the correspondence error inside
the true mask read four ways (soft-argmax over the whole image, as trained; in the 3×3 window of the
best cell, the model's own eval-mode read; in the 5×5 window; the best cell), also on the cells the
model marks.

    .venv/bin/python lab/synthetic_breakdown.py WEIGHTS W/test_coco320 W/test_unsup320
    .venv/bin/python lab/synthetic_breakdown.py WEIGHTS W/coco320 W/unsup320 --held-out 100

Needs the folders' feature caches (`segswap eval synthetic` or `segswap train` writes them).
Used in lab/training.md.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from segswap.models.correlation import cell_centres, soft_argmax_flows
from segswap.models.weights import load_weights
from segswap.synth.cache import FeatureCache, cache_dir_for
from segswap.train.loop import split_indices

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)
LINE_WORK = ("engraving", "pencil")  # the styles that replace tones by strokes


def side_of(meta: dict, side: str) -> dict:
    style = meta[side].get("style") or {}
    return {"style": style.get("kind", "none"), "objects": len(meta[side]["objects"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("pairs", type=Path, nargs="+")
    parser.add_argument("--held-out", type=int, default=0, help="score only the run's held-out split of this size (seed 0)")
    args = parser.parse_args()
    model, config = load_weights(args.weights)
    model.eval()
    cache = FeatureCache([cache_dir_for(p, config["backbone"], config["size"]) for p in args.pairs])
    indices = split_indices(len(cache), args.held_out, 0)[1] if args.held_out else np.arange(len(cache))
    images, masks, truths = [], [], []
    errors = defaultdict(list)
    with torch.inference_mode():
        for start in range(0, len(indices), 25):
            chunk = indices[start:start + 25]
            batch = cache.get(chunk)
            out = model({"feats_a": batch["feats_a"], "feats_b": batch["feats_b"]})
            grid_a, (h, w) = tuple(batch["mask_a"].shape[1:]), tuple(batch["mask_b"].shape[1:])
            flows = {"the model's flows": out["flow_ab"].flatten(1, 2)}
            if "match_logits" in out:
                for name, radius in (("soft-argmax, whole image", None), ("3×3 window", 1), ("5×5 window", 2)):
                    flows[name] = soft_argmax_flows(out["match_logits"], grid_a, (h, w), radius)[0].flatten(1, 2)
                flows["best cell"] = cell_centres(h, w)[out["match_logits"].argmax(dim=2)]
            truth, marked = batch["mask_a"].flatten(1) > 0.5, out["mask_a"].flatten(1) > 0.5
            for name, flow in flows.items():
                err = ((flow - batch["flow_ab"].flatten(1, 2)) * torch.tensor([w, h])).norm(dim=-1)
                errors[name] += err[truth].tolist()
                errors[name + ", marked cells"] += err[truth & marked].tolist()
            for j, i in enumerate(chunk):
                meta = json.loads((cache.pair_dirs[i] / "meta.json").read_text())
                for side in "ab":
                    images.append(side_of(meta, side))
                    masks.append(out[f"mask_{side}"][j].flatten())
                    truths.append(batch[f"mask_{side}"][j].flatten() > 0.5)
    pred, gt = torch.stack(masks), torch.stack(truths)

    def iou(threshold):
        p = pred > threshold
        return ((p & gt).sum(1) / (p | gt).sum(1).clamp(min=1)).numpy()

    at_half = iou(0.5)
    best = np.max([iou(t) for t in np.linspace(0.05, 0.95, 19)], axis=0)
    cells = gt.sum(1).numpy()
    # Images are stored a, b, a, b, ...: an image's partner is its index with the last bit flipped.
    partner = np.arange(len(images)) ^ 1
    scale = np.maximum(cells, cells[partner]) / np.maximum(np.minimum(cells, cells[partner]), 1)
    print(f"{len(images)} images of {len(indices)} pairs; IoU at 0.5 {at_half.mean():.3f}, at each image's best threshold "
          f"{best.mean():.3f}; IoU < 0.1 for {np.mean(at_half < 0.1):.0%} of the images")
    groups = {"object cells": ["< 40" if c < 40 else "40–80" if c < 80 else "≥ 80" for c in cells],
              "style": [m["style"] for m in images], "the other image's style": [images[j]["style"] for j in partner],
              "objects": [str(m["objects"]) for m in images],
              "object area, larger ÷ smaller image": ["< 2×" if r < 2 else "2–4×" if r < 4 else "≥ 4×" for r in scale]}
    print("\n| group | value | images | IoU at 0.5 | IoU at best threshold | IoU < 0.1 |\n|---|---|---|---|---|---|")
    for name, values in groups.items():
        for value in sorted(set(values)):
            sel = np.array(values) == value
            print(f"| {name} | {value} | {sel.sum()} | {at_half[sel].mean():.3f} | {best[sel].mean():.3f} | "
                  f"{np.mean(at_half[sel] < 0.1):.0%} |")
    line_work = np.array([m["style"] in LINE_WORK or images[j]["style"] in LINE_WORK for m, j in zip(images, partner)])
    easy = ~line_work & (scale < 2)
    print(f"\nthe easiest {easy.mean():.0%} (neither image an engraving or pencil drawing, object area changing < 2×): "
          f"IoU at 0.5 {at_half[easy].mean():.3f}, IoU < 0.1 for {np.mean(at_half[easy] < 0.1):.0%}")
    print("\n| global threshold | " + " | ".join(map(str, THRESHOLDS)) + " |\n|---|" + "---|" * len(THRESHOLDS))
    print("| IoU | " + " | ".join(f"{iou(t).mean():.3f}" for t in THRESHOLDS) + " |")
    print("\n| correspondences a → b | cells | mean (cells) | median | ≤ 1 cell |\n|---|---|---|---|---|")
    for name, values in errors.items():
        e = np.array(values)
        print(f"| {name} | {len(e)} | {e.mean():.2f} | {np.median(e):.2f} | {np.mean(e <= 1):.2f} |")


if __name__ == "__main__":
    main()
