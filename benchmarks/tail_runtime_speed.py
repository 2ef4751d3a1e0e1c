"""The shipped model with its backbone tail on ONNX Runtime (the default) against the same model with the
tail on PyTorch, timed interleaved in one process.

    .venv/bin/python benchmarks/tail_runtime_speed.py [--repeats 9]

Two workloads on random block-12 features: a batch of 16 search pairs (a 6×6-cell detail against 20×14-cell
candidates, as a box query re-ranks its shortlist) and one 480-px pair (30×30 cells each). Median
milliseconds of the whole pair model (``Matcher.predict``), and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, print_machine, print_table, run_and_record  # noqa: E402

import segswap  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    matcher = segswap.load(size=480)
    tail = matcher.model.tail
    if tail is None or tail.onnx is None:
        raise SystemExit("the shipped model has no backbone tail on ONNX Runtime here")
    session = tail.onnx
    torch.manual_seed(0)
    unit = lambda *shape: F.normalize(torch.randn(*shape), dim=1)  # noqa: E731
    workloads = {"batch of 16 search pairs (6×6 against 20×14 cells)": (unit(16, 120, 6, 6), unit(16, 120, 20, 14)),
                 "one 480-px pair (30×30 cells each)": (unit(1, 120, 30, 30), unit(1, 120, 30, 30))}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for runtime in ("onnx", "torch"):
            tail.onnx = session if runtime == "onnx" else None
            for name, (fa, fb) in workloads.items():
                matcher.predict(fa, fb)  # warm: the first call of a shape pays for allocation
                start = time.perf_counter()
                matcher.predict(fa, fb)
                times.setdefault((name, runtime), []).append(1e3 * (time.perf_counter() - start))
    tail.onnx = session
    rows = []
    for name in workloads:
        onnx, torch_ms = (statistics.median(times[name, r]) for r in ("onnx", "torch"))
        rows.append([name, f"{onnx:.0f}", f"{torch_ms:.0f}", f"{torch_ms / onnx:.2f}×"])
    print(f"\nthe whole pair model, median ms of {args.repeats} interleaved runs\n")
    print_table(["workload", "tail on ONNX Runtime", "tail on PyTorch", "speed-up"], rows)


if __name__ == "__main__":
    run_and_record(main)
