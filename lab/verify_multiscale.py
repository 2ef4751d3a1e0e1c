"""The SegSwap pair score over `segswap pair`'s views as a verify verdict (issue 23, item 4), measured.

Score of a pair (a, b): ``segswap.load().match(a, b, prior=False)`` with its default views (the scales of
:data:`segswap.shipped.SEARCH_SCALES`, no flip, no rotations), i.e. `segswap pair`'s own path: the view
with the most confident masks is kept, and the score is that view's matched fraction (paper Eq. 3 with a
as the query, over a's cells in that view — a is enlarged for scales below 1). The prior changes only the
image-size masks, not the score, so it is left off.

Sets, as lab/verify_fusion_features.py: ``calibration`` (a `segswap synth --conditions all` folder:
its pairs against the negatives `segswap eval calibrate-verify` draws, seed 0), ``conditions`` (each
folder of a `segswap eval conditions` work folder, negatives with the benchmark's seed 201),
``samples`` (the 8 sample pairs, the 56 non-matching combinations, graf1 vs box). ``measure``: the
threshold at precision 0.95 on the calibration pairs and the counts it gives on the sample pairs.

    .venv/bin/python lab/verify_multiscale.py calibration /work/scratch/verify_cal_301 --out ms_cal.npz
    .venv/bin/python lab/verify_multiscale.py samples --out ms_samples.npz
    .venv/bin/python lab/verify_multiscale.py conditions /work/scratch/conditions --out ms_cond.npz
    .venv/bin/python lab/verify_multiscale.py measure ms_cal.npz ms_samples.npz [--conditions ms_cond.npz]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import segswap
from segswap.evaluation.calibration import negative_pairs, operating_point
from segswap.shipped import SEARCH_SCALES
from segswap.synth.cache import FeatureCache, build_cache
from segswap.verify.same_object import PairScoreVerifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_fusion_features import PAIRS_DIR, SAMPLE_PAIRS  # noqa: E402

TARGET_PRECISION = 0.95


def multiscale_score(matcher, image_a, image_b, scales=SEARCH_SCALES) -> tuple[float, float]:
    """(matched fraction of the view `segswap pair` keeps, that view's scale)."""
    verdict = PairScoreVerifier(matcher, threshold=0.5, scales=scales).verify(image_a, image_b)  # the threshold is unused
    return verdict["score"], verdict["scale"]


def score_pairs(matcher, pairs, label: str) -> np.ndarray:
    """N×2 (score, chosen scale) of (path a, path b) pairs; elapsed time on stderr, no scores."""
    out, start = [], time.time()
    for k, (a, b) in enumerate(pairs):
        out.append(multiscale_score(matcher, a, b))
        if (k + 1) % 25 == 0 or k + 1 == len(pairs):
            print(f"{label}: {k + 1}/{len(pairs)} pairs, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    return np.array(out)


def folder_pairs(folder: Path, seed: int, matcher, subsample: int | None = None):
    """(path pairs, labels) of a synth folder's pairs (1) and its negatives (0) drawn as calibrate-verify does;
    ``subsample``: that many of each, np.random.default_rng(0).permutation of each list, first ones."""
    cache = FeatureCache([build_cache(folder, matcher.backbone.name, matcher.size)])
    indices = np.arange(len(cache))
    negatives, _ = negative_pairs(cache, seed)
    positives = np.column_stack([indices, indices])
    if subsample:
        rng = np.random.default_rng(0)
        positives = positives[rng.permutation(len(positives))[:subsample]]
        negatives = negatives[rng.permutation(len(negatives))[:subsample]]
    both = np.r_[positives, negatives]
    pairs = [(cache.pair_dirs[int(i)] / "a.jpg", cache.pair_dirs[int(j)] / "b.jpg") for i, j in both]
    return pairs, both, np.r_[np.ones(len(positives)), np.zeros(len(negatives))]


def sample_pairs() -> tuple[list, np.ndarray]:
    matching = list(SAMPLE_PAIRS)
    other = [(SAMPLE_PAIRS[i][0], SAMPLE_PAIRS[j][1]) for i in range(8) for j in range(8) if i != j]
    return matching + other + [("graf1.png", "box.png")], np.r_[np.ones(8), np.zeros(56), [0]]


def measure(args) -> None:
    from sklearn.metrics import average_precision_score

    cal, samples = np.load(args.calibration), np.load(args.samples)
    s, y = cal["scores"][:, 0], cal["labels"]
    point = operating_point(s[y == 1], s[y == 0], TARGET_PRECISION)
    ss = samples["scores"][:, 0]
    said = ss >= point["threshold"]
    row = {**point, "calibration_pairs": [int((y == 1).sum()), int((y == 0).sum())],
           "sample_ap": float(average_precision_score(samples["labels"][:64], ss[:64])),
           "matching_said_match": int(said[:8].sum()), "non_matching_said_match": int(said[8:64].sum()),
           "graf1_vs_box": "match" if said[64] else "no match", "graf1_vs_box_score": float(ss[64]),
           "matching": {f"{a}/{b}": [float(v), float(sc)] for (a, b), v, sc in
                        zip(samples["pairs"][:8], ss[:8], samples["scores"][:8, 1])},
           "non_matching_said_match_pairs": {f"{a}/{b}": float(v) for (a, b), v, m in
                                             zip(samples["pairs"][8:64], ss[8:64], said[8:64]) if m},
           "largest_non_matching": float(ss[8:64].max()),
           "calibration_chosen_scales": {f"{x:g}": int((cal["scores"][:, 1] == x).sum()) for x in SEARCH_SCALES}}
    if args.conditions:
        cond = np.load(args.conditions)
        names = sorted(k.removesuffix("_scores") for k in cond.files if k.endswith("_scores"))
        row["conditions_ap"] = {c: float(average_precision_score(cond[f"{c}_labels"], cond[f"{c}_scores"][:, 0]))
                                for c in names}
        row["mean_ap_ten_conditions"] = float(np.mean([v for c, v in row["conditions_ap"].items() if c != "none"]))
    print(json.dumps(row, indent=1))
    if args.json:
        args.json.write_text(json.dumps(row, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=("calibration", "conditions", "samples", "measure"))
    parser.add_argument("paths", type=Path, nargs="*")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--subsample", type=int, default=None, help="calibration: that many positives and negatives")
    parser.add_argument("--limit", type=int, default=None, help="the first N pairs only (timing)")
    parser.add_argument("--conditions", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.set == "measure":
        args.calibration, args.samples = args.paths
        return measure(args)
    matcher = segswap.load()
    if args.set == "samples":
        pairs, labels = sample_pairs()
        scores = score_pairs(matcher, [(PAIRS_DIR / a, PAIRS_DIR / b) for a, b in pairs], "samples")
        np.savez(args.out, scores=scores, labels=labels, pairs=np.array(pairs))
    elif args.set == "calibration":
        pairs, indices, labels = folder_pairs(args.paths[0], 0, matcher, args.subsample)
        if args.limit:
            start = time.time()
            score_pairs(matcher, pairs[:args.limit], "timing")
            print(f"{(time.time() - start) / args.limit:.2f} s/pair", file=sys.stderr)
            return
        np.savez(args.out, scores=score_pairs(matcher, pairs, "calibration"), labels=labels, indices=indices)
    else:
        arrays = {}
        for folder in sorted(p for p in args.paths[0].iterdir() if (p / "manifest.jsonl").is_file()):
            pairs, indices, labels = folder_pairs(folder, 201, matcher)
            arrays[f"{folder.name}_scores"] = score_pairs(matcher, pairs, folder.name)
            arrays[f"{folder.name}_labels"] = labels
        np.savez(args.out, **arrays)
    print(f"→ {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
