"""Issue 39 item 0, rule G4: place a detail hit's box by ArtMiner's one-shot detection, the query box's
features slid over the hit's feature map at several template sizes (normalised cross-correlation), measured on
each query's true targets (the box only: which image is returned is search's business).

    .venv/bin/python lab/detail_template.py W/details_dev --features lite2 tail dinov2 --json g4.json

For each query: the query image is warped so that the box's long side spans ``w`` cells (w in --cells) with a
margin of context; the box's cells are the template. The target is resized to a long side of --target-side
px; its feature map is correlated with each template (mean cosine over the template's cells); the best
position over every size is the box. Reports boxed at IoU ≥ 0.5 / 0.3 by kind and the time per target.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from segswap.backbone import get_backbone
from segswap.evaluation.details import box_iou, read_detail_truth
from segswap.io import load_image, pixels_to_tensor, resize_for_model

STRIDE = 16


class Features:
    """name -> callable(uint8 RGB image with sides multiple of 16) -> C×h×w normalised."""

    def __init__(self, name: str):
        self.name = name
        if name == "lite2":
            backbone = get_backbone("efficientnet-lite2")
            self.run = lambda image: backbone(pixels_to_tensor(image))[0]
        elif name == "block12":
            backbone = get_backbone("efficientnet-lite2-block12")
            self.run = lambda image: backbone(pixels_to_tensor(image))[0]
        elif name == "dinov2":
            backbone = get_backbone("dinov2-s")
            self.run = lambda image: backbone(pixels_to_tensor(image))[0]
        elif name == "tail":
            import segswap
            matcher = segswap.load()
            tail = matcher.model.tail
            backbone = get_backbone("efficientnet-lite2-block12")

            def run(image):
                with torch.no_grad():
                    return tail(backbone(pixels_to_tensor(image)))[0]
            self.run = run
        else:
            raise SystemExit(f"unknown features {name}")


def template(features: Features, image: np.ndarray, box, cells: int, margin: int):
    """(C×bh×bw template, scale) for ``box`` warped so its long side spans ``cells`` cells."""
    x0, y0, x1, y1 = box
    scale = cells * STRIDE / max(x1 - x0, y1 - y0)
    bw = max(1, round((x1 - x0) * scale / STRIDE))
    bh = max(1, round((y1 - y0) * scale / STRIDE))
    width, height = (bw + 2 * margin) * STRIDE, (bh + 2 * margin) * STRIDE
    matrix = np.float32([[scale, 0, margin * STRIDE - x0 * scale], [0, scale, margin * STRIDE - y0 * scale]])
    warped = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    feats = features.run(warped)
    return feats[:, margin:margin + bh, margin:margin + bw], scale


def locate(templates, target_feats: torch.Tensor, target_scale: float, box):
    """Best (score, box) of the templates over the target map; box in the target's original pixels."""
    best = (-2.0, None)
    x0, y0, x1, y1 = box
    for tmpl, scale in templates:
        _, bh, bw = tmpl.shape
        if bh > target_feats.shape[1] or bw > target_feats.shape[2]:
            continue
        scores = F.conv2d(target_feats[None], tmpl[None])[0, 0] / (bh * bw)
        value, flat = scores.flatten().max(0)
        if value.item() > best[0]:
            v, u = divmod(flat.item(), scores.shape[1])
            left, top = u * STRIDE / target_scale, v * STRIDE / target_scale
            found = (left, top, left + (x1 - x0) * scale / target_scale, top + (y1 - y0) * scale / target_scale)
            best = (value.item(), tuple(round(c) for c in found))
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("collection", type=Path)
    parser.add_argument("--features", nargs="+", default=["lite2"])
    parser.add_argument("--cells", type=int, nargs="+", default=[3, 4, 5, 6, 8, 10, 12])
    parser.add_argument("--target-side", type=int, default=1024)
    parser.add_argument("--margin", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    queries = read_detail_truth(args.collection)
    images = args.collection / "images"
    record = {"cells": args.cells, "target_side": args.target_side, "margin": args.margin, "results": {}}
    for name in args.features:
        features = Features(name)
        rows, seconds, targets = [], 0.0, 0
        cache = {}
        for query in queries:
            query_image = load_image(images / query.image)
            templates = [template(features, query_image, query.box, c, args.margin) for c in args.cells]
            for image, box, kind in query.targets:
                start = time.perf_counter()
                if image not in cache:
                    pixels = load_image(images / image)
                    resized = resize_for_model(pixels, args.target_side)
                    cache[image] = (features.run(resized), resized.shape[1] / pixels.shape[1])
                feats, target_scale = cache[image]
                score, found = locate(templates, feats, target_scale, query.box)
                seconds += time.perf_counter() - start
                targets += 1
                rows.append((kind, box_iou(found, box) if found else 0.0, score))
        kinds = sorted({k for k, _, _ in rows})

        def share(at, kind=None):
            picked = [iou for k, iou, _ in rows if kind in (None, k)]
            return round(sum(iou >= at for iou in picked) / len(picked), 3)
        result = {"boxed_0_5": share(0.5), "boxed_0_3": share(0.3),
                  "by_kind": {k: share(0.5, k) for k in kinds}, "seconds_per_target_first": round(seconds / targets, 3)}
        record["results"][name] = result
        print(name, json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
