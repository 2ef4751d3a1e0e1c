"""Discovery on a collection whose repeats are known (`segswap eval discover ROOT`).

Layout: ``ROOT/images/**`` (the collection) and ``ROOT/truth.json``::

    {"pairs": [{"a": "rel/path.jpg", "b": "rel/other.jpg", "kind": "viewpoint"}, ...],
     "boxes": {"rel/path.jpg": [[x0, y0, x1, y1], ...], ...}}

``pairs``: images that show the same thing (paths relative to ``images/``), with the kind of change
between them (copy, depiction, viewpoint, light, scale, place, near-duplicate...); ``boxes`` (optional):
where the repeated thing is in an image. Measures, from the patterns found:

* **pair recall**: the share of true pairs whose two images are in one pattern (a near-duplicate folded
  into a pattern counts as in it), overall and per kind;
* **pair precision**: of the image pairs that share a pattern, the share that are true (pairs joined by a
  chain of true pairs count as true: the same wall seen six times);
* **distinct patterns**: the share of patterns whose image set (near-duplicates folded) no other has;
* **region precision**: of the pattern regions in images with known boxes, the share that overlap one of
  them at IoU ≥ :data:`REGION_IOU`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from ..errors import SegswapError
from ..grid import box_iou

REGION_IOU = 0.3


@dataclass(frozen=True)
class DiscoveryTruth:
    pairs: list[tuple[str, str, str]]  # (a, b, kind), paths relative to images/
    boxes: dict[str, list[tuple[int, int, int, int]]]


def read_discovery_truth(root: Path) -> DiscoveryTruth:
    root = Path(root)
    path = root / "truth.json"
    if not (root / "images").is_dir() or not path.is_file():
        raise SegswapError(f"{root}: not a discovery benchmark (needs images/ and truth.json)")
    try:
        data = json.loads(path.read_text())
        pairs = [(str(p["a"]), str(p["b"]), str(p.get("kind", "same"))) for p in data["pairs"]]
        boxes = {str(k): [tuple(int(v) for v in box) for box in v] for k, v in data.get("boxes", {}).items()}
    except (ValueError, KeyError, TypeError) as err:
        raise SegswapError(f"{path}: expected {{\"pairs\": [{{\"a\", \"b\", \"kind\"}}, ...], \"boxes\": {{...}}}} "
                           f"({err})") from None
    missing = [p for a, b, _ in pairs for p in (a, b) if not (root / "images" / p).is_file()]
    if missing:
        raise SegswapError(f"{path}: {len(missing)} images of its pairs are not in images/ (first: {missing[0]})")
    return DiscoveryTruth(pairs, boxes)


def _groups(pairs) -> dict[str, int]:
    """Each image of the true pairs → its group: the images joined by chains of true pairs."""
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, _ in pairs:
        parent[find(a)] = find(b)
    roots = sorted({find(x) for x in parent})
    return {x: roots.index(find(x)) for x in parent}


def discovery_scores(patterns: list[dict], truth: DiscoveryTruth) -> dict:
    """The measures of the module docstring for ``patterns``: each ``{"kind", "images": [{"path", "box",
    "near_duplicates": [...]}]}`` with paths relative to ``images/``."""
    sets = []
    regions = []  # (path, box)
    for pattern in patterns:
        members = set()
        for image in pattern["images"]:
            members.add(image["path"])
            members.update(image.get("near_duplicates", []))
            if image.get("box") is not None:
                regions.append((image["path"], tuple(image["box"])))
        sets.append(frozenset(members))
    together = {frozenset(pair) for members in sets for pair in combinations(sorted(members), 2)}
    found, kinds = [], {}
    for a, b, kind in truth.pairs:
        hit = frozenset((a, b)) in together
        found.append(hit)
        kinds.setdefault(kind, []).append(hit)
    group = _groups(truth.pairs)
    true_together = [pair for pair in together
                     if all(p in group for p in pair) and len({group[p] for p in pair}) == 1]
    boxed = [(path, box) for path, box in regions if path in truth.boxes]
    region_hits = [any(box_iou(box, t) >= REGION_IOU for t in truth.boxes[path]) for path, box in boxed]
    distinct = len(set(sets))
    return {
        "patterns": len(patterns),
        "repeats": sum(p.get("kind", "repeat") == "repeat" for p in patterns),
        "near_duplicate_groups": sum(p.get("kind") == "near-duplicates" for p in patterns),
        "pair_recall": round(sum(found) / len(found), 4) if found else None,
        "pairs_found": int(sum(found)), "true_pairs": len(found),
        "recall_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(kinds.items())},
        "kinds_found": sorted(k for k, v in kinds.items() if any(v)),
        "pair_precision": round(len(true_together) / len(together), 4) if together else None,
        "pairs_together": len(together),
        "distinct_patterns": round(distinct / len(patterns), 4) if patterns else None,
        "region_precision": round(sum(region_hits) / len(region_hits), 4) if region_hits else None,
        "regions_with_truth": len(region_hits),
    }


def relative_patterns(patterns_json: list[dict], images_root: Path) -> list[dict]:
    """Patterns' JSON (absolute paths, as `segswap discover --json` writes) with paths relative to ``images_root``."""
    root = Path(images_root).resolve()

    def rel(path):
        return Path(path).resolve().relative_to(root).as_posix()

    return [{**p, "images": [{**m, "path": rel(m["path"]), "near_duplicates": [rel(n) for n in m.get("near_duplicates", [])]}
                             for m in p["images"]]} for p in patterns_json]
