"""Rule G2's candidates (lab/rules.md): a box for every detail hit that today's evidence leaves unboxed.

    .venv/bin/python lab/detail_boxes.py W/details_dev --work W/details_work --json W/g2_details.json

Runs `segswap search --box` as `segswap eval details` does (same index, same ranking) and, for each returned
hit, computes the box each candidate would give:

- ``today``: the search's box (keypoints when they decide, else the pair model's matched region, else none);
- ``K``: today's box when the keypoints decide, else the box carried by the detail layer's inliers (the index's
  keypoints without one) when
  there are at least ``--min-inliers`` of them, else today's;
- ``F``: today's box, else the query box carried to the median landing point of the query's cells under
  the pair model's flow (its size scaled between the two images' index scales);
- ``KF``: K, and F where K leaves none.

Prints box found (IoU ≥ 0.5 and ≥ 0.3) by candidate and kind; the ranking, hence mAP, is the same for all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from segswap.cli.common import load_matcher
from segswap.collection import search as search_module
from segswap.collection.search import box_keypoints, keypoint_box
from segswap.collection.update import update_index
from segswap.evaluation.details import detail_scores, read_detail_truth
from segswap.io import load_image
from segswap.keypoints import get_matcher

CANDIDATES = ("today", "K", "F", "KF")


def flow_box(pred, query_box, query_size, hit_size, index_size) -> tuple[int, int, int, int]:
    """The query box carried to the median landing point of the query's cells (mask > 0.5, else all)."""
    cells = pred.mask_a > 0.5
    if not cells.any():
        cells = np.ones_like(pred.mask_a, bool)
    landing = np.median(pred.flow_ab[cells], axis=0)  # (x, y) in [0, 1] of b
    w, h = hit_size
    cx, cy = landing[0] * w, landing[1] * h
    x0, y0, x1, y1 = query_box
    ratio = (index_size / max(query_size)) / (index_size / max(hit_size))
    bw, bh = (x1 - x0) * ratio, (y1 - y0) * ratio
    return (int(max(0, cx - bw / 2)), int(max(0, cy - bh / 2)), int(min(w, cx + bw / 2)), int(min(h, cy + bh / 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--min-inliers", type=int, default=6)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    queries = read_detail_truth(args.root)
    index, _ = update_index(args.root / "images", args.work / "index")
    matcher = load_matcher(None, None, backbone=index.backbone, size=index.size)
    layer = "details" if index.detail_keypoint_settings is not None else "keypoints"
    settings = index.detail_keypoint_settings or index.keypoint_settings
    detailer = get_matcher(settings["matcher"], **settings["conf"])
    captured = {}
    original = search_module.predict_pairs

    def capture(*a, **k):
        found = original(*a, **k)
        captured.clear()
        captured.update({p.b: p for p in found})
        return found

    search_module.predict_pairs = capture
    images = (args.root / "images").resolve()
    results = {c: [] for c in CANDIDATES}
    for q in queries:
        rgb = load_image(images / q.image)
        found = search_module.search(index, images / q.image, matcher, box=q.box, top=args.top + 1)
        query_kp = box_keypoints(detailer, rgb, q.box)
        rows = {c: [] for c in CANDIDATES}
        for hit in found.hits:
            name = str(hit.image.path.resolve().relative_to(images))
            if name == q.image:
                continue
            today = hit.box
            k_box = today
            if "keypoints" not in hit.decided_by:
                m = detailer.match(None, None, feats_a=query_kp, feats_b=index.keypoints(hit.image.id, layer))
                if m["inliers"].sum() >= args.min_inliers:
                    inl = m["inliers"]
                    k_box = keypoint_box(m["keypoints_a"][inl], m["keypoints_b"][inl], q.box, hit.image.size)
            f_box = today or flow_box(captured[hit.image.id], q.box, (rgb.shape[1], rgb.shape[0]), hit.image.size,
                                      index.size)
            for c, b in (("today", today), ("K", k_box), ("F", f_box), ("KF", k_box or f_box)):
                rows[c].append((name, b))
        for c in CANDIDATES:
            results[c].append(rows[c][:args.top])
    out = {}
    for c in CANDIDATES:
        s = detail_scores(queries, results[c])
        out[c] = {k: s[k] for k in ("map", "box_found", "box_found_iou_0_3", "box_found_by_kind", "mean_iou")}
        print(c, json.dumps(out[c]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
