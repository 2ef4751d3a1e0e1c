"""`segswap verify` on the sample pairs (issue 23's target: all 8 matching pairs "match", at most 6 of
the 56 non-matching combinations do).

``../shared/data/eval/pairs`` holds eight pairs that share content. Matching: each pair's two images.
Non-matching: the first image of one pair with the second image of another (8 × 7 = 56). Verdicts at
the verifier's calibrated threshold (``--threshold`` to try another); also graffiti vs box, the pair
the issue names.

    .venv/bin/python lab/verify_sample_pairs.py [--by scott] [--weights W --threshold T] --json /tmp/sample_pairs.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segswap.verify.same_object import VERIFY_BY, load_same_object_verifier

PAIRS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "pairs"
PAIRS = [("box.png", "box_in_scene.png"), ("graf1.png", "graf3.png"), ("aero1.jpg", "aero3.jpg"),
         ("leuvenA.jpg", "leuvenB.jpg"), ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg"),
         ("rubberwhale1.png", "rubberwhale2.png"), ("basketball1.png", "basketball2.png"),
         ("motorcycle_left.png", "motorcycle_right.png")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by", choices=VERIFY_BY, default=VERIFY_BY[0])
    parser.add_argument("--weights", type=Path, default=None, help="the verdict model's weights (default: shipped)")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    verifier = load_same_object_verifier(args.by, args.weights, threshold=args.threshold)
    value = "score" if args.by == "pair-score" else "probability"

    def verdict(a: str, b: str) -> dict:
        out = verifier.verify(PAIRS_DIR / a, PAIRS_DIR / b)
        return {"a": a, "b": b, "match": out["match"], value: out[value]}

    matching = [verdict(a, b) for a, b in PAIRS]
    other = [verdict(PAIRS[i][0], PAIRS[j][1]) for i in range(len(PAIRS)) for j in range(len(PAIRS)) if i != j]
    result = {"threshold": verifier.threshold, "threshold_source": verifier.threshold_source,
              "matching_said_match": sum(v["match"] for v in matching), "matching": len(matching),
              "non_matching_said_match": sum(v["match"] for v in other), "non_matching": len(other),
              "graf1_vs_box": verdict("graf1.png", "box.png"), "matching_pairs": matching, "non_matching_pairs": other}
    print(f"{args.by}: threshold {verifier.threshold:.4f} ({verifier.threshold_source}): matching pairs said 'match' "
          f"{result['matching_said_match']}/{len(matching)}; non-matching said 'match' "
          f"{result['non_matching_said_match']}/{len(other)}; graf1 vs box: "
          f"{'match' if result['graf1_vs_box']['match'] else 'no match'} ({result['graf1_vs_box'][value]:.4f})")
    for v in matching:
        print(f"  {v['a']} / {v['b']}: {v[value]:.4f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
