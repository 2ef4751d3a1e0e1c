"""Speed of `segswap synth`: pairs per second and time per stage, against plain copy-paste in the same run.

    .venv/bin/python benchmarks/synth_speed.py [-n 200] [--size 480] [--workers 2]

Generates into a temporary folder (deleted afterwards) from the shared training folders. Configurations:
the reference (plain copy-paste, no style: the cheapest pair there is), the full generator (Poisson
blending + style) with the given workers, and the full generator on one worker. Per configuration:
pairs/s (wall clock, scanning excluded), milliseconds per pair in each stage (summed over workers, so
they add up to the CPU time per pair), and the speed relative to the reference. Target: >= 10 pairs/s
with 2 workers at 480 px.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, print_table, run_and_record  # noqa: E402

from segswap.synth import STAGES, generate  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"
TARGET = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--segments", type=Path, default=SHARED / "coco128_seg")
    parser.add_argument("--backgrounds", type=Path, default=SHARED / "photos")
    parser.add_argument("--styles", type=Path, default=SHARED / "styles")
    add_json_argument(parser)
    args = parser.parse_args()
    print(machine_summary())
    print(f"{args.n} pairs at {args.size} px from {args.segments.name}, backgrounds {args.backgrounds.name}\n")

    configs = [
        ("reference: copy-paste, no style", dict(blend="copy", style=False, workers=args.workers)),
        ("full: Poisson + style", dict(workers=args.workers)),
        ("full: Poisson + style", dict(workers=1)),
    ]
    rows, reference = [], None
    stages = STAGES + ("write",)
    with tempfile.TemporaryDirectory(prefix="synth_speed_") as tmp:
        for k, (name, options) in enumerate(configs):
            summary = generate([args.segments], args.backgrounds, Path(tmp) / f"run{k}", args.n, size=args.size,
                               styles=args.styles, progress=False, **options)
            rate = summary.pairs_per_second
            reference = reference or rate
            per_pair = [summary.stage_seconds.get(s, 0.0) / max(1, summary.written) * 1000 for s in stages]
            rows.append([name, options["workers"], f"{rate:.1f}", *(f"{ms:.1f}" for ms in per_pair),
                         f"{sum(per_pair):.0f}", f"{rate / reference:.2f}"])
    print_table(["configuration", "workers", "pairs/s", *(f"{s} ms" for s in stages), "CPU ms/pair", "× reference"], rows)
    full = float(rows[1][2])
    verdict = "meets" if full >= TARGET else "MISSES"
    print(f"\nfull generator with {args.workers} workers: {full:.1f} pairs/s, {verdict} the target of {TARGET:.0f} pairs/s")


if __name__ == "__main__":
    run_and_record(main)
