"""Keypoint matchers against the one-view pair model, timed in the same run (2 cores): per 640-px pair,
extraction of one image, matching a pair (extraction done), and both together; then `segswap verify`'s
verdicts per pair (pair score over five views; keypoints; fused); and a search of an index of the 16 sample
images (``--top 10``: a head of 20 checked by the index's keypoints) with and without its keypoint check.

    .venv/bin/python benchmarks/keypoints_speed.py [--repeats 5] [--json out.json]

Images: the graffiti pair img1 / img3 of ../shared/data/eval/pairs (800×640). Ratios are to the one-view
pair (``segswap.load().match(a, b, scales=(1,), prior=False, keypoints=False)``) timed in this run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import RECORD_EXTRA, add_json_argument, median_time, print_machine, print_table, run_and_record  # noqa: E402

import segswap  # noqa: E402
from segswap.errors import SegswapError  # noqa: E402
from segswap.io import load_image  # noqa: E402
from segswap.keypoints import get_matcher, is_installed, matcher_names  # noqa: E402
from segswap.shipped import INDEX_KEYPOINTS  # noqa: E402

PAIRS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "pairs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--a", type=Path, default=PAIRS / "graf1.png")
    parser.add_argument("--b", type=Path, default=PAIRS / "graf3.png")
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    a, b = load_image(args.a), load_image(args.b)
    pair = segswap.load()
    reference = median_time(lambda: pair.match(a, b, scales=(1.0,), prior=False, keypoints=False), args.repeats)
    rows, report = [], {"reference_one_view_pair_ms": round(1000 * reference, 1), "matchers": {}}
    rows.append(["one-view pair (reference)", "", "", f"{1000 * reference:.0f}", "1.00×"])
    settings = [(name, {}) for name in matcher_names() if is_installed(name)]
    settings.append((INDEX_KEYPOINTS[0], INDEX_KEYPOINTS[1]))  # what an index stores and search matches
    for name, conf in settings:
        matcher = get_matcher(name, **conf)
        fa, fb = matcher.extract(a), matcher.extract(b)
        extract = median_time(lambda: matcher.extract(a), args.repeats)
        match = median_time(lambda: matcher.match_features(fa, fb), args.repeats)
        total = 2 * extract + match
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in conf.items())})" if conf else "")
        rows.append([label, f"{1000 * extract:.0f}", f"{1000 * match:.0f}", f"{1000 * total:.0f}",
                     f"{total / reference:.2f}×"])
        report["matchers"][label] = {"extract_ms": round(1000 * extract, 1), "match_ms": round(1000 * match, 1),
                                     "pair_ms": round(1000 * total, 1), "keypoints": len(fa["keypoints"])}
    print_table(["", "extract one image (ms)", "match a pair (ms)", "pair in all (ms)", "× one-view pair"], rows)
    verdicts = []
    from segswap.verify.same_object import load_same_object_verifier

    for by in ("pair-score", "keypoints", "fused"):
        try:
            verifier = load_same_object_verifier(by)
        except SegswapError as err:  # not calibrated yet
            print(f"verify --by {by}: {err}")
            continue
        seconds = median_time(lambda: verifier.verify(args.a, args.b), max(3, args.repeats // 2), warmup=1)
        verdicts.append([f"verify --by {by}", f"{1000 * seconds:.0f}", f"{seconds / reference:.2f}×"])
        report[f"verify_{by}_ms"] = round(1000 * seconds, 1)
    if verdicts:
        print_table(["", "per pair (ms)", "× one-view pair"], verdicts)
    report.update(search_head(pair, args.a, args.repeats))
    print_table(["", "per query (ms)", "added by the head's keypoint check (ms)"],
                [["search --no-keypoints", f"{report['search_ms']:.0f}", ""],
                 ["search (head of 20 checked by keypoints)", f"{report['search_keypoints_ms']:.0f}",
                  f"{report['search_keypoints_ms'] - report['search_ms']:.0f}"]])
    RECORD_EXTRA.update(report)


def search_head(matcher, query: Path, repeats: int) -> dict:
    """A search of an index of the sample images, whole-image query, with and without the keypoint check
    of its head (what rule S1 bounds at 1 s)."""
    import tempfile

    from segswap.collection.search import search
    from segswap.collection.update import update_index

    with tempfile.TemporaryDirectory() as folder:
        index, _ = update_index(PAIRS, Path(folder) / "idx", show_progress=False)
        plain = median_time(lambda: search(index, query, matcher, top=10, keypoints=False), repeats, warmup=1)
        checked = median_time(lambda: search(index, query, matcher, top=10, keypoints=True), repeats, warmup=1)
        index.close()
    return {"search_ms": round(1000 * plain, 1), "search_keypoints_ms": round(1000 * checked, 1)}


if __name__ == "__main__":
    run_and_record(main)
