"""Where a one-view pair's time goes: `segswap.load(weights=segswap.safetensors, size=480).match(a, b, scales=(1,),
prior=False, keypoints=False)` on two random 480×480 PNGs, profiled.

    .venv/bin/python lab/pair_profile.py [--pairs 5]

Prints the median end-to-end milliseconds, then torch.autograd.profiler's operators by self time and cProfile's
functions by cumulative time over ``--pairs`` pairs (divide by it for a pair). Results: lab/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import segswap

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "segswap" / "data" / "segswap.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    matcher = segswap.load(weights=WEIGHTS, size=480)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = f"{tmp}/a.png", f"{tmp}/b.png"
        for path in (a, b):
            cv2.imwrite(path, (rng.random((480, 480, 3)) * 255).astype(np.uint8))

        def one():
            matcher.match(a, b, scales=(1.0,), prior=False, keypoints=False)

        for _ in range(3):
            one()
        times = []
        for _ in range(7):
            start = time.perf_counter()
            one()
            times.append(time.perf_counter() - start)
        print(f"one-view pair end to end: {1e3 * statistics.median(times):.0f} ms (median of 7)")
        with torch.autograd.profiler.profile() as profile:
            for _ in range(args.pairs):
                one()
        print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.pairs):
            one()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
