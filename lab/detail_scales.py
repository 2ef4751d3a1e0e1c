"""Rule G1's candidates (lab/rules.md): a second keypoint layer for detail queries, at several scales.

    .venv/bin/python lab/detail_scales.py W/details_dev --json W/detail_scales.json

For each candidate (long side, most keypoints), every image of the collection is extracted once; each
query's keypoints come from its box at the same scale; the query is matched (xfeat mutual NN + ratio test,
homography) against every other image. A copy counts as boxed when it has at least KEYPOINT_MIN_INLIERS
inliers and the box carried by them (search's keypoint_box) has IoU ≥ 0.5 with the truth. Also the AP of
the ranking by inliers, the store per image and the time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from segswap.collection.search import box_keypoints, keypoint_box
from segswap.evaluation.details import average_precision, read_detail_truth
from segswap.grid import box_iou
from segswap.io import load_image
from segswap.keypoints import get_matcher
from segswap.shipped import INDEX_KEYPOINTS, KEYPOINT_MIN_INLIERS

CANDIDATES = [(960, 4096), (960, 8192), (1280, 4096), (1280, 8192), (1600, 4096), (1600, 8192)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--matcher", default=INDEX_KEYPOINTS[0])
    parser.add_argument("--candidates", default=",".join(f"{r}x{m}" for r, m in CANDIDATES),
                        help="long side x most keypoints, comma-separated")
    args = parser.parse_args()
    queries = read_detail_truth(args.root)
    names = sorted(p.name for p in (args.root / "images").iterdir())
    images = {n: load_image(args.root / "images" / n) for n in names}
    rows = []
    counts = {"true": [], "false": []}
    for resize, most in (tuple(int(v) for v in c.split("x")) for c in args.candidates.split(",")):
        base = INDEX_KEYPOINTS[1] if args.matcher == INDEX_KEYPOINTS[0] else {}
        matcher = get_matcher(args.matcher, **{**base, "resize": resize, "max_keypoints": most})
        start = time.perf_counter()
        stored = {n: matcher.extract(images[n]) for n in names}
        extract_s = (time.perf_counter() - start) / len(names)
        bytes_per_image = np.mean([len(f["keypoints"]) * (12 + 2 * f["descriptors"].shape[1]) for f in stored.values()])
        found, aps, by_kind = [], [], {}
        start = time.perf_counter()
        for q in queries:
            feats = box_keypoints(matcher, images[q.image], q.box)
            scored = []
            for n in names:
                if n == q.image:
                    continue
                m = matcher.match(None, None, feats_a=feats, feats_b=stored[n])
                inl = m["inliers"]
                box = (keypoint_box(m["keypoints_a"][inl], m["keypoints_b"][inl], q.box, stored[n]["image_size"])
                       if inl.sum() >= 3 else None)
                scored.append((int(inl.sum()), n, box))
            scored.sort(key=lambda t: -t[0])
            relevant = {t[0] for t in q.targets}
            for count, n, _ in scored:
                counts["true" if n in relevant else "false"].append(count)
            aps.append(average_precision([n for _, n, _ in scored], {t[0] for t in q.targets}))
            for image, truth_box, kind in q.targets:
                count, _, box = next(s for s in scored if s[1] == image)
                ok = count >= KEYPOINT_MIN_INLIERS and box is not None and box_iou(box, truth_box) >= 0.5
                found.append(ok)
                by_kind.setdefault(kind, []).append(ok)
        query_s = (time.perf_counter() - start) / len(queries)
        row = {"resize": resize, "max_keypoints": most, "box_found": round(float(np.mean(found)), 4),
               "by_kind": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_kind.items())},
               "map_by_inliers": round(float(np.mean(aps)), 4), "store_kb": round(bytes_per_image / 1024, 1),
               "extract_s": round(extract_s, 3), "query_s": round(query_s, 3)}
        row["inliers_true"] = np.percentile(counts["true"], [25, 50, 75]).tolist()
        row["inliers_false_p95_max"] = [float(np.percentile(counts["false"], 95)), max(counts["false"])]
        counts = {"true": [], "false": []}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
