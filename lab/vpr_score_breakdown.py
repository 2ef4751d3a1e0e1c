"""Why a pair model re-ranks VPR-Bench places as it does: over each query's global-descriptor
shortlist, the pair score (Eq. 3) and the predicted mask areas of the correct references against the
wrong ones, and how far the best correct candidate's score lies above the best wrong one's.

    .venv/bin/python lab/vpr_score_breakdown.py ../shared/data/eval/vpr_corridor --weights A.safetensors [B ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import segswap
from segswap.evaluation.vpr import SHORTLIST, global_descriptor, global_ranking, read_vpr_benchmark
from segswap.io import load_image
from segswap.models.outputs import similarity_score


def breakdown(root: Path, weights: Path) -> dict:
    matcher = segswap.load(weights=weights)
    bench = read_vpr_benchmark(root)
    features = {p: matcher.features(matcher.prepare(load_image(p))[0]) for p in bench.queries + bench.references}
    refs = torch.stack([global_descriptor(features[p]) for p in bench.references])
    rows = {True: [], False: []}  # correct? → (score, query mask area, reference mask area)
    margins = []
    for q in sorted(bench.truth):
        if not bench.truth[q]:
            continue
        fq = features[bench.queries[q]]
        ranking = global_ranking(refs, fq)[:SHORTLIST]
        best = {True: -np.inf, False: -np.inf}
        for r in ranking:
            fr = features[bench.references[r]]
            out = matcher.predict(fq, fr)
            score = float(similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], fq, fr)[0])
            correct = r in bench.truth[q]
            rows[correct].append((score, float((out["mask_a"] > 0.5).float().mean()), float((out["mask_b"] > 0.5).float().mean())))
            best[correct] = max(best[correct], score)
        if np.isfinite(best[True]) and np.isfinite(best[False]):
            margins.append(best[True] / max(best[False], 1e-6))
    summary = {}
    for correct, values in rows.items():
        v = np.array(values)
        summary["correct" if correct else "wrong"] = (len(v), *np.median(v, axis=0))
    summary["margin"] = (float(np.median(margins)), float(np.mean(np.array(margins) <= 1.0)), len(margins))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--weights", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    print("| weights | candidates | median score | median query mask area | median reference mask area | "
          "median best-correct / best-wrong score | queries whose best wrong scores higher |")
    print("|---|---|---|---|---|---|---|")
    for weights in args.weights:
        s = breakdown(args.root, weights)
        for kind in ("correct", "wrong"):
            n, score, area_q, area_r = s[kind]
            print(f"| {weights.name} | {n} {kind} | {score:.1f} | {area_q:.2f} | {area_r:.2f} | | |")
        ratio, lost, n = s["margin"]
        print(f"| {weights.name} | {n} queries | | | | {ratio:.2f} | {lost:.1%} |")


if __name__ == "__main__":
    main()
