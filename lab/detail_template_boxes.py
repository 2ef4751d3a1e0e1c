"""Rules G4's and G5's candidates (lab/rules.md): a detail hit's box from ArtMiner's one-shot detection (the query box's
features slid over the hit's at several template sizes), on the hits `segswap search --box` returns.

    .venv/bin/python lab/detail_template_boxes.py W/details_dev --work W/details_work --json W/g4_details.json

Runs search as `segswap eval details` does (same index, same ranking, hence the same mAP) and, for each
returned hit the keypoints do not decide, the box each candidate gives:
``today`` (the shipped box), ``T<side>`` (the template's box), ``PT<side>`` (the pair model's region where
today's box is it, else the template's), at a target long side of 768 px, templates from 3 cells to the target's size (``--rule G5``); ``--rule G4``:
templates of 3 to 12 cells, sides 768 and 1024, and ``KT`` (the keypoint inliers' box where today's came from
them, else the template's) in place of PT; ``--rule G6``: ``KRT`` (keypoints, keypoint inliers, the pair
region, else the template's box) in place of PT, timed for the hits it boxes. Prints box found by kind
and the median extra seconds a query for the template boxes of its hits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from detail_template import Features, locate, template

from segswap.cli.common import load_matcher
from segswap.collection import search as search_module
from segswap.collection.template import template_sizes
from segswap.collection.update import update_index
from segswap.grid import box_iou
from segswap.evaluation.details import detail_scores, read_detail_truth
from segswap.io import load_image, resize_for_model

MARGIN = 3
#: Per rule: the target long sides, the candidates beside today's, whether templates grow to the target's size.
RULES = {"G4": ((768, 1024), ("T", "KT"), False), "G5": ((768,), ("T", "PT"), True),
         "G6": ((768,), ("T", "KRT"), True)}


def template_cells(side: int, to_target: bool) -> list[int]:
    """G4: 3 to 12 cells. G5: 3 cells, then x1.25 (rounded, distinct) up to the target's long side."""
    if not to_target:
        return [3, 4, 5, 6, 8, 10, 12]
    return template_sizes(side // 16)  # the library's (collection/template.py), as shipped by G6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--rule", choices=sorted(RULES), default="G6")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    queries = read_detail_truth(args.root)
    index, _ = update_index(args.root / "images", args.work / "index")
    matcher = load_matcher(None, None, backbone=index.backbone, size=index.size)
    features = Features("lite2")
    images = (args.root / "images").resolve()
    sides, candidates, to_target = RULES[args.rule]
    names = ["today"] + [f"{c}{s}" for s in sides for c in candidates]
    results = {c: [] for c in names}
    seconds = {s: [] for s in sides}
    sources = []
    last_resort_seconds = []
    for q in queries:
        rgb = load_image(images / q.image)
        found = search_module.search(index, images / q.image, matcher, box=q.box, top=args.top + 1)
        hits = [h for h in found.hits if str(h.image.path.resolve().relative_to(images)) != q.image][:args.top]
        rows = {c: [] for c in names}
        for side in sides:
            start = time.perf_counter()
            templates = [template(features, rgb, q.box, c, MARGIN) for c in template_cells(side, to_target)]
            template_seconds, needed_seconds = time.perf_counter() - start, []
            boxes = []
            for hit in hits:
                if hit.box_from == "keypoints":
                    boxes.append(None)
                    continue
                started = time.perf_counter()
                pixels = load_image(hit.image.path)
                resized = resize_for_model(pixels, side)
                _, box = locate(templates, features.run(resized), resized.shape[1] / pixels.shape[1], q.box)
                boxes.append(box)
                if hit.box_from in ("pair flow", None):  # what KRT computes
                    needed_seconds.append(time.perf_counter() - started)
            seconds[side].append(time.perf_counter() - start)
            last_resort_seconds.append(template_seconds + sum(needed_seconds) if needed_seconds else 0.0)
            for hit, box in zip(hits, boxes):
                name = str(hit.image.path.resolve().relative_to(images))
                rows[f"T{side}"].append((name, hit.box if box is None else box))
                kept_from = {"KT": ("keypoints", "keypoint inliers"), "PT": ("keypoints", "pair region"),
                             "KRT": ("keypoints", "keypoint inliers", "pair region")}[candidates[1]]
                kept = hit.box if hit.box_from in kept_from else box
                rows[f"{candidates[1]}{side}"].append((name, kept if kept is not None else hit.box))
        truth = {t[0]: t[1] for t in q.targets}
        for hit, box in zip(hits, boxes):
            name = str(hit.image.path.resolve().relative_to(images))
            rows["today"].append((name, hit.box))
            if name in truth:  # per target: what placed today's box, its IoU and the template's
                sources.append((hit.box_from, box_iou(hit.box, truth[name]) if hit.box else 0.0,
                                box_iou(box, truth[name]) if box else None))
        for c in names:
            results[c].append(rows[c])
    out = {"extra_seconds_per_query_median": {str(s): round(statistics.median(v), 3) for s, v in seconds.items()}}
    for c in names:
        s = detail_scores(queries, results[c])
        out[c] = {k: s[k] for k in ("map", "box_found", "box_found_iou_0_3", "box_found_by_kind", "mean_iou")}
        print(c, json.dumps(out[c]), flush=True)
    for source in sorted({str(r[0]) for r in sources}):
        picked = [r for r in sources if str(r[0]) == source]
        print(f"{source}: {len(picked)} targets, today boxed {sum(r[1] >= 0.5 for r in picked)}, "
              f"template boxed {sum((r[2] or 0) >= 0.5 for r in picked if r[2] is not None)}")
    if "KRT" in candidates:
        out["last_resort_seconds_per_query_median"] = round(statistics.median(last_resort_seconds), 3)
        print("KRT's extra seconds a query (median):", out["last_resort_seconds_per_query_median"])
    print("extra seconds a query (median):", out["extra_seconds_per_query_median"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
