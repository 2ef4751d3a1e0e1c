"""How `segswap search`'s match / no-match verdicts fare on real pairs (lab/results.md).

Indexes ``../shared/data/eval/pairs`` (eight pairs of images that share content), searches with every
image of it (its partner is the one match; the other 14 images are not) and with every 40th image of
MSRC (unrelated to all of them), and counts the verdicts at the calibrated threshold.

    .venv/bin/python lab/search_verdicts.py --index /tmp/pairs_index
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from segswap.collection.index import CollectionIndex
from segswap.collection.search import search
from segswap.collection.update import update_index
from segswap.io.paths import list_images
from segswap import load

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
#: Pairs whose names do not differ only by a trailing number.
PARTNERS = {"box_in_scene": "box", "leuvenA": "leuven", "leuvenB": "leuven", "motorcycle_left": "motorcycle",
            "motorcycle_right": "motorcycle"}


def pair_key(path: Path) -> str:
    return PARTNERS.get(path.stem, re.sub(r"\d+$", "", path.stem))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="Index folder to make (or reuse).")
    parser.add_argument("--pairs", type=Path, default=SHARED / "pairs")
    parser.add_argument("--unrelated", type=Path, default=SHARED / "msrc_coseg" / "images")
    parser.add_argument("--every", type=int, default=40, help="Use every n-th unrelated image as a query.")
    args = parser.parse_args()
    built, _ = update_index(args.pairs, args.index, show_progress=False)
    built.close()
    matcher = load()
    counts = {"match_true": 0, "match_false": 0, "pairs": 0, "others": 0, "unrelated_hits": 0, "unrelated_match": 0}
    inliers = {"matching": [], "non-matching": [], "unrelated": []}  # the keypoints' inliers per result
    with CollectionIndex(args.index) as index:
        for query in list_images(args.pairs):
            for hit in search(index, query, matcher, top=len(index)).hits:
                if hit.image.path.resolve() == query.resolve():
                    continue
                same = pair_key(hit.image.path) == pair_key(query)
                counts["pairs" if same else "others"] += 1
                inliers["matching" if same else "non-matching"].append(hit.inliers)
                if hit.match:
                    counts["match_true" if same else "match_false"] += 1
        for query in list_images(args.unrelated)[::args.every]:
            for hit in search(index, query, matcher, top=len(index)).hits:
                counts["unrelated_hits"] += 1
                inliers["unrelated"].append(hit.inliers)
                counts["unrelated_match"] += bool(hit.match)
    called = counts["match_true"] + counts["match_false"]
    print(f"threshold: {'calibrated' if matcher.weights_sha256 else 'none'}")
    print(f"pairs queries: {counts['match_true']} of {counts['pairs']} matching results called 'match' (recall "
          f"{counts['match_true'] / max(counts['pairs'], 1):.2f}); precision of 'match' "
          f"{counts['match_true'] / max(called, 1):.2f} ({counts['match_false']} of {counts['others']} non-matching "
          "results called 'match')")
    print(f"unrelated queries: {counts['unrelated_match']} of {counts['unrelated_hits']} results called 'match'")
    for kind, values in inliers.items():
        checked = sorted((v for v in values if v is not None), reverse=True)
        if checked:
            shown = checked if kind == "matching" else checked[:8]
            print(f"keypoint inliers, {kind} results ({len(checked)} checked; {'all' if kind == 'matching' else 'highest'}):"
                  f" {' '.join(map(str, shown))}")


if __name__ == "__main__":
    main()
