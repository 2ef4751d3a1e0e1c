"""Rule S2 (lab/rules.md): does re-ranking that stops once the top is settled give today's top 10?

    .venv/bin/python lab/search_early_stop.py W/conditions --work W/s2 --json W/s2.json

Both images of every condition pair (``CONDITIONS/<condition>/<pair>/{a,b}.jpg``) are hard-linked into
``WORK/images`` and indexed (480 px, index keypoints, as `segswap index`). Queries: image a's object box
(the bounding box of ``mask_a.png``) of the first ``--per-condition`` pairs of each condition. Each query is
searched twice with the shipped model, top 10: re-ranking the whole shortlist (today) and stopping once
the top is settled (:func:`settling`, in place of search's ``predict_pairs``).
Prints how many top-10 sets agree, how often b's rank is the same or better, and the time of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

import segswap
from segswap.collection import search as search_module
from segswap.collection.predictions import predict_pairs
from segswap.collection.update import update_index

BATCH = 16


def settling(top: int):
    """search's re-ranking, as the candidate: the shortlist in descriptor order, a batch at a time, stopping
    after the first batch from the third on that changes nothing in the top ``top`` by Eq. 3 score."""

    def rerank(matcher, features, pairs, **kwargs):
        kwargs.pop("show_progress", None)
        predictions, leaders = [], None
        for start in range(0, len(pairs), BATCH):
            predictions += predict_pairs(matcher, features, pairs[start:start + BATCH], show_progress=False,
                                         **{k: v for k, v in kwargs.items() if k == "batch_size"})
            now = {p.b for p in sorted(predictions, key=lambda p: -p.score_ab)[:top]}
            if start >= 2 * BATCH and now == leaders:
                break
            leaders = now
        return predictions

    return rerank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("conditions", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--per-condition", type=int, default=4)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    images = args.work / "images"
    images.mkdir(parents=True, exist_ok=True)
    queries = []
    for condition in sorted(p for p in args.conditions.iterdir() if p.is_dir()):
        for k, pair in enumerate(sorted(p for p in condition.iterdir() if (p / "a.jpg").is_file())):
            for side in "ab":
                link = images / f"{condition.name}_{pair.name}_{side}.jpg"
                if not link.exists():
                    os.link(pair / f"{side}.jpg", link)
            if k < args.per_condition:
                ys, xs = np.nonzero(cv2.imread(str(pair / "mask_a.png"), cv2.IMREAD_GRAYSCALE) > 127)
                box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
                queries.append((f"{condition.name}_{pair.name}_a.jpg", box, f"{condition.name}_{pair.name}_b.jpg"))
    index, _ = update_index(images, args.work / "index")
    matcher = segswap.load(size=index.size)
    rows = []
    for name, box, partner in queries:
        runs = {}
        for settle in (False, True):
            start = time.perf_counter()
            search_module.predict_pairs = settling(args.top + 1) if settle else predict_pairs
            found = search_module.search(index, images / name, matcher, box=box, top=args.top + 1)
            seconds = time.perf_counter() - start
            ranked = [h.image.path.name for h in found.hits if h.image.path.name != name][:args.top]
            rank = ranked.index(partner) + 1 if partner in ranked else None
            runs["settle" if settle else "today"] = {"top": ranked, "partner_rank": rank, "seconds": round(seconds, 3)}
        same = set(runs["today"]["top"]) == set(runs["settle"]["top"])
        today, settled = runs["today"]["partner_rank"], runs["settle"]["partner_rank"]
        kept = today is None or (settled is not None and settled <= today)
        rows.append({"query": name, "box": box, "same_top": same, "partner_kept": kept, **runs})
        print(json.dumps({"query": name, "same_top": same, "partner": [today, settled],
                          "seconds": [runs["today"]["seconds"], runs["settle"]["seconds"]]}), flush=True)
    summary = {"queries": len(rows), "same_top": sum(r["same_top"] for r in rows),
               "partner_same_or_better": sum(r["partner_kept"] for r in rows),
               "median_seconds_today": statistics.median(r["today"]["seconds"] for r in rows),
               "median_seconds_settle": statistics.median(r["settle"]["seconds"] for r in rows)}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": rows}, indent=1))


if __name__ == "__main__":
    main()
