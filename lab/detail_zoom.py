"""Rule G3's candidate Z (lab/rules.md): a detail hit's box from a second look at the detail's own scale.

    .venv/bin/python lab/detail_zoom.py W/details_dev --work W/details_work [--json FILE]

Runs `segswap search --box` as `segswap eval details` does (same index and ranking) and, for each returned
hit the keypoints do not decide, runs the pair model again on the query box zoomed so that its long side is
``--cells`` cells, against a 480-px window of the hit zoomed alike (centred on today's box, else the most
confident of tiles over the hit). Prints box found by kind for today's boxes and for Z, and the seconds the
second looks took per query.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from segswap.cli.common import load_matcher
from segswap.collection.search import region_box, search
from segswap.collection.update import update_index
from segswap.evaluation.details import detail_scores, read_detail_truth
from segswap.grid import STRIDE
from segswap.io import load_image, pixels_to_tensor
from segswap.models.outputs import cycle_consistent_mask
from segswap.pair import view_confidence

WINDOW = 480


def snapped(rgb: np.ndarray, scale: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(2 * STRIDE, round(w * scale / STRIDE) * STRIDE), max(2 * STRIDE, round(h * scale / STRIDE) * STRIDE))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def windows(shape, centre=None) -> list[tuple[int, int]]:
    """Top-left corners of WINDOW-px windows: one centred on ``centre`` (x, y), or tiles covering the image."""
    h, w = shape[:2]
    if centre is not None:
        return [(int(np.clip(centre[0] - WINDOW // 2, 0, max(0, w - WINDOW))),
                 int(np.clip(centre[1] - WINDOW // 2, 0, max(0, h - WINDOW))))]
    xs = sorted({min(x, max(0, w - WINDOW)) for x in range(0, max(1, w - WINDOW // 3), 2 * WINDOW // 3)})
    ys = sorted({min(y, max(0, h - WINDOW)) for y in range(0, max(1, h - WINDOW // 3), 2 * WINDOW // 3)})
    return [(x, y) for y in ys for x in xs]


@torch.inference_mode()
def zoomed_box(matcher, query_rgb, box, hit_rgb, index_size: int, today, cells: int):
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    zoom = cells * STRIDE / side
    margin = side // 4
    qh, qw = query_rgb.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0 - margin), max(0, y0 - margin), min(qw, x1 + margin), min(qh, y1 + margin)
    crop = snapped(query_rgb[cy0:cy1, cx0:cx1], zoom)
    feats_a = matcher.features(pixels_to_tensor(crop))
    hit_zoom = zoom * max(query_rgb.shape[:2]) / max(hit_rgb.shape[:2])
    hit = snapped(hit_rgb, hit_zoom)
    fy, fx = hit.shape[0] / hit_rgb.shape[0], hit.shape[1] / hit_rgb.shape[1]
    centre = None if today is None else ((today[0] + today[2]) / 2 * fx, (today[1] + today[3]) / 2 * fy)
    best = None
    for wx, wy in windows(hit.shape, centre):
        window = np.ascontiguousarray(hit[wy:wy + WINDOW, wx:wx + WINDOW])
        window = window[:window.shape[0] // STRIDE * STRIDE, :window.shape[1] // STRIDE * STRIDE]
        out = matcher.predict(feats_a, matcher.features(pixels_to_tensor(window)))
        confidence = float(view_confidence(out)[0])
        if best is None or confidence > best[0]:
            best = (confidence, out, (wx, wy), window.shape)
    _, out, (wx, wy), shape = best
    region = cycle_consistent_mask(out["mask_b"], out["mask_a"], out["flow_ba"])[0].numpy()
    found = region_box(region, (shape[1], shape[0]))
    if found is None:
        return None
    bx0, by0, bx1, by1 = found
    return (int((bx0 + wx) / fx), int((by0 + wy) / fy), int(np.ceil((bx1 + wx) / fx)), int(np.ceil((by1 + wy) / fy)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    queries = read_detail_truth(args.root)
    index, _ = update_index(args.root / "images", args.work / "index")
    matcher = load_matcher(None, None, backbone=index.backbone, size=index.size)
    images = (args.root / "images").resolve()
    results = {"today": [], "Z": []}
    seconds = []
    for q in queries:
        query_rgb = load_image(images / q.image)
        found = search(index, images / q.image, matcher, box=q.box, top=args.top + 1)
        rows = {"today": [], "Z": []}
        start = time.perf_counter()
        for hit in found.hits:
            name = str(hit.image.path.resolve().relative_to(images))
            if name == q.image:
                continue
            z = hit.box
            if "keypoints" not in hit.decided_by:
                z = zoomed_box(matcher, query_rgb, q.box, load_image(hit.image.path), index.size, hit.box, args.cells) or hit.box
            rows["today"].append((name, hit.box))
            rows["Z"].append((name, z))
        seconds.append(time.perf_counter() - start)
        for c in results:
            results[c].append(rows[c][:args.top])
    out = {}
    for c in results:
        s = detail_scores(queries, results[c])
        out[c] = {k: s[k] for k in ("map", "box_found", "box_found_iou_0_3", "box_found_by_kind", "mean_iou")}
        print(c, json.dumps(out[c]), flush=True)
    out["seconds_per_query"] = float(np.median(seconds))
    print(f"second looks: {out['seconds_per_query']:.2f} s a query (median)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
