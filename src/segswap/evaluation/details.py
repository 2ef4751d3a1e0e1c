"""Detail search against known copies (`segswap eval details ROOT`).

Layout: ``ROOT/images/**`` (the collection) and ``ROOT/truth.json``::

    {"queries": [{"image": "rel/path.png", "box": [x0, y0, x1, y1], "kind": "copy",
                  "targets": [{"image": "rel/other.png", "box": [...], "kind": "depiction"}, ...]}, ...]}

Each query is a box in one image of the collection; its targets are the other images that show that
detail, with the detail's box in each. Measures, over every query's ``top`` results (the query's own
image left out):

* **mAP**: mean over queries of the average precision of the ranking (a target not returned counts as
  missed);
* **box found**: the share of (query, target) pairs whose target is returned with a box at IoU ≥ 0.5 with
  the true one (and at ≥ 0.3), overall and by the target's kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import SegswapError
from ..grid import box_iou

BOX_IOU = (0.5, 0.3)


@dataclass(frozen=True)
class DetailQuery:
    image: str
    box: tuple[int, int, int, int]
    kind: str
    targets: tuple[tuple[str, tuple[int, int, int, int], str], ...]  # (image, box, kind)


def read_detail_truth(root: Path) -> list[DetailQuery]:
    root = Path(root)
    path = root / "truth.json"
    if not (root / "images").is_dir() or not path.is_file():
        raise SegswapError(f"{root}: not a detail benchmark (needs images/ and truth.json)")
    try:
        queries = [DetailQuery(str(q["image"]), tuple(int(v) for v in q["box"]), str(q.get("kind", "copy")),
                               tuple((str(t["image"]), tuple(int(v) for v in t["box"]), str(t.get("kind", "copy")))
                                     for t in q["targets"]))
                   for q in json.loads(path.read_text())["queries"]]
    except (ValueError, KeyError, TypeError) as err:
        raise SegswapError(f"{path}: expected {{\"queries\": [{{\"image\", \"box\", \"targets\": [{{\"image\", \"box\"}}]}}]}} "
                           f"({err})") from None
    missing = sorted({p for q in queries for p in (q.image, *(t[0] for t in q.targets))
                      if not (root / "images" / p).is_file()})
    if missing:
        raise SegswapError(f"{path}: {len(missing)} of its images are not in images/ (first: {missing[0]})")
    if not queries:
        raise SegswapError(f"{path}: no queries")
    return queries


def average_precision(ranked: list[str], relevant: set[str]) -> float:
    """Average precision of ``ranked`` (best first) against ``relevant``; unreturned relevant ones count 0."""
    found, total = 0, 0.0
    for rank, item in enumerate(ranked, start=1):
        if item in relevant:
            found += 1
            total += found / rank
    return total / len(relevant) if relevant else 0.0


def detail_scores(queries: list[DetailQuery], results: list[list[tuple[str, tuple | None]]]) -> dict:
    """The module docstring's measures; ``results[i]``: query i's hits, best first, as (image, box or None)
    with images relative to ``images/`` (the query's own image already left out)."""
    aps, rows = [], []
    for query, hits in zip(queries, results):
        aps.append(average_precision([image for image, _ in hits], {t[0] for t in query.targets}))
        boxes = dict(hits)
        for image, box, kind in query.targets:
            found = boxes.get(image)
            rows.append((kind, box_iou(found, box) if found else 0.0))
    kinds = sorted({kind for kind, _ in rows})

    def share(iou_at, kind=None):
        picked = [iou for k, iou in rows if kind in (None, k)]
        return round(sum(iou >= iou_at for iou in picked) / len(picked), 4)

    return {"queries": len(queries), "target_pairs": len(rows), "map": round(sum(aps) / len(aps), 4),
            "box_found": share(BOX_IOU[0]), "box_found_iou_0_3": share(BOX_IOU[1]),
            "box_found_by_kind": {kind: share(BOX_IOU[0], kind) for kind in kinds},
            "mean_iou": round(sum(iou for _, iou in rows) / len(rows), 4)}
