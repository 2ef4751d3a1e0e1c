"""Rule G7's candidates (lab/rules.md): the detail's template as the arbiter of a hit's box.

    .venv/bin/python lab/detail_box_arbiter.py W/details_dev --work W/details_work --json W/g7_details.json

Runs search as `segswap eval details` does (same index, same ranking, hence the same mAP) and, for each
returned hit whose box the keypoints do not decide (``box_from`` "keypoint inliers" or "pair region"), the
template's best place (its mean cosine s*, its box) and the template's mean cosine at the hit's box (s_c, the
template of the box's own size read at the box's corner). Candidate ``A<δ>``: the template's box replaces the
hit's where s* − s_c ≥ δ; ``S0.10`` (rule G8): A0.10 where the template's box is not more than 4× smaller in area
than the hit's. Prints the boxes found (IoU ≥ 0.5, ≥ 0.3, by kind) for today's boxes and each δ, and the
median template seconds a query (G6's last resort included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from segswap.cli.collection import index_matcher
from segswap.collection import search as search_module
from segswap.collection.template import DetailTemplate
from segswap.collection.update import update_index
from segswap.evaluation.details import detail_scores, read_detail_truth
from segswap.io import load_image

DELTAS = (0.05, 0.10, 0.15)
#: G8: the template's box replaces a box at most this many times its area (a mean cosine over fewer cells is
#: higher by chance).
AREA_RATIO = 4.0
ARBITRATED = ("keypoint inliers", "pair region")


def score_at(detail: DetailTemplate, image: np.ndarray, box) -> float | None:
    """The mean cosine of the template of ``box``'s size at ``box``'s place (the library's, as G8 ships it)."""
    feats, factor = detail._searched(image)
    return detail._score_at(detail._scores(feats), factor, box)


def area(box) -> float:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def comparable(row: dict) -> bool:
    """G8: the template's box is not more than AREA_RATIO times smaller than the hit's."""
    return "best_box" in row and area(row["best_box"]) * AREA_RATIO >= area(row["box"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    queries = read_detail_truth(args.root)
    index, _ = update_index(args.root / "images", args.work / "index")
    matcher = index_matcher(None, None, index.backbone, index.size, index)  # learned weights where the index has them
    images = (args.root / "images").resolve()
    names = ["today"] + [f"A{d:.2f}" for d in DELTAS] + ["S0.10"]
    results = {c: [] for c in names}
    seconds, records = [], []
    for q in queries:
        rgb = load_image(images / q.image)
        start = time.perf_counter()
        found = search_module.search(index, images / q.image, matcher, box=q.box, top=args.top + 1)
        search_seconds = time.perf_counter() - start
        hits = [h for h in found.hits if str(h.image.path.resolve().relative_to(images)) != q.image][:args.top]
        detail = DetailTemplate(rgb, q.box)
        start = time.perf_counter()
        rows = {c: [] for c in names}
        for hit in hits:
            name = str(hit.image.path.resolve().relative_to(images))
            row = {"query": q.image, "query_index": len(results["today"]), "image": name, "box_from": hit.box_from, "box": hit.box, "inliers": hit.inliers}
            if hit.box_from in ARBITRATED and hit.box is not None:
                pixels = load_image(hit.image.path)
                best = detail.locate(pixels)
                current = score_at(detail, pixels, hit.box)
                if best is not None and current is not None:
                    row.update(best_score=best[0], best_box=best[1], current_score=current)
            records.append(row)
            rows["today"].append((name, hit.box))
            gain = row.get("best_score", 0.0) - row.get("current_score", np.inf)
            for d in DELTAS:
                rows[f"A{d:.2f}"].append((name, row["best_box"] if gain >= d else hit.box))
            rows["S0.10"].append((name, row["best_box"] if gain >= 0.10 and comparable(row) else hit.box))
        seconds.append(time.perf_counter() - start)
        for c in names:
            results[c].append(rows[c])
        print(f"{q.image}: search {search_seconds:.2f} s, arbiter {seconds[-1]:.2f} s", flush=True)
    out = {"arbiter_seconds_per_query_median": round(statistics.median(seconds), 3), "hits": records}
    for c in names:
        s = detail_scores(queries, results[c])
        out[c] = {k: s[k] for k in ("map", "box_found", "box_found_iou_0_3", "box_found_by_kind", "mean_iou")}
        print(c, json.dumps(out[c]), flush=True)
    print("arbiter seconds a query (median):", out["arbiter_seconds_per_query_median"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
