"""Co-segmentation of copies of one object: six planted groups (the test suite's generator: one object
pasted into eight cluttered backgrounds, off centre, where it need not be the salient thing), mean IoU
per method of `segswap cosegment`. The counterpart of MSRC, where the common object is the salient one.

    .venv/bin/python lab/coseg_planted_groups.py [--weights W] [--groups 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "collection"))
from conftest import planted_group  # noqa: E402  (the generator the tests plant groups with)

import segswap  # noqa: E402
from segswap.collection.cosegment import cosegment_images  # noqa: E402
from segswap.collection.methods import COSEG_METHODS as METHODS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--groups", type=int, default=6)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods to run")
    args = parser.parse_args()
    matcher = segswap.load(weights=args.weights)
    scores: dict[str, list[float]] = {method: [] for method in args.methods.split(",")}
    for seed in range(args.groups):
        with tempfile.TemporaryDirectory() as folder:
            paths, truths = planted_group(Path(folder), 8, seed, object_seed=1000 + 17 * seed)
            for method in scores:
                masks = cosegment_images(paths, matcher, show_progress=False, method=method)
                scores[method].append(float(np.mean([((m > 0) & (t > 0)).sum() / max(((m > 0) | (t > 0)).sum(), 1)
                                                     for m, t in zip(masks, truths)])))
        print(f"group {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in scores.items()), flush=True)
    print("mean IoU: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
