"""`segswap verify` on the sample pairs (issue 23's target: all 8 matching pairs "match", at most 6 of
the 56 non-matching combinations do).

``../shared/data/eval/pairs`` holds eight pairs that share content. Matching: each pair's two images.
Non-matching: the first image of one pair with the second image of another (8 × 7 = 56). Verdicts at
the verifier's calibrated threshold (``--threshold`` to try another); also graffiti vs box, the pair
the issue names.

    .venv/bin/python scripts/verify_sample_pairs.py --json /tmp/sample_pairs.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segswap.verify.same_object import load_verifier

PAIRS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "pairs"
PAIRS = [("box.png", "box_in_scene.png"), ("graf1.png", "graf3.png"), ("aero1.jpg", "aero3.jpg"),
         ("leuvenA.jpg", "leuvenB.jpg"), ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg"),
         ("rubberwhale1.png", "rubberwhale2.png"), ("basketball1.png", "basketball2.png"),
         ("motorcycle_left.png", "motorcycle_right.png")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    verifier = load_verifier(threshold=args.threshold)
    features = {name: verifier.features(PAIRS_DIR / name) for pair in PAIRS for name in pair}

    def verdict(a: str, b: str) -> dict:
        return {"a": a, "b": b, **{k: v for k, v in verifier.verify_features(features[a], features[b]).items()
                                    if k in ("match", "probability")}}

    matching = [verdict(a, b) for a, b in PAIRS]
    other = [verdict(PAIRS[i][0], PAIRS[j][1]) for i in range(len(PAIRS)) for j in range(len(PAIRS)) if i != j]
    result = {"threshold": verifier.threshold, "threshold_source": verifier.threshold_source,
              "matching_said_match": sum(v["match"] for v in matching), "matching": len(matching),
              "non_matching_said_match": sum(v["match"] for v in other), "non_matching": len(other),
              "graf1_vs_box": verdict("graf1.png", "box.png"), "matching_pairs": matching, "non_matching_pairs": other}
    print(f"threshold {verifier.threshold:.4f} ({verifier.threshold_source}): matching pairs said 'match' "
          f"{result['matching_said_match']}/{len(matching)}; non-matching said 'match' "
          f"{result['non_matching_said_match']}/{len(other)}; graf1 vs box: "
          f"{'match' if result['graf1_vs_box']['match'] else 'no match'} ({result['graf1_vs_box']['probability']:.3f})")
    for v in matching:
        print(f"  {v['a']} / {v['b']}: {v['probability']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
