"""`segswap learn` on 1,000 images: the time it takes against the budget it is given, and its peak memory.

    .venv/bin/python benchmarks/learn_speed.py [--count 1000] [--minutes 20]

The collection is discover_speed.py's synthetic one (640×480 cluttered backgrounds, none alike), with
``--patterns`` patches of the shared photos each pasted into ``--copies`` images, here 300–400 px across (the
repeats ArtMiner's mining needs: two images sharing a region of 8×8 cells at the index's scale). It is indexed
(`segswap index`, the default backbone and size), then `segswap learn --index IDX --minutes M` runs in a fresh
process as a user runs it, timed by GNU time (maximum resident set size). Reported: the command's time over its
budget (the reference, set by the same run), its peak memory against the issue's 4 GiB, the updates and mined
pairs of each stage (from the index's learned.json).

Target: within its default budget (20 minutes) on 2 cores, ≤ 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, print_machine, print_table, run_and_record  # noqa: E402
from discover_speed import make_collection  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--patterns", type=int, default=50)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=20.0, help="the budget given to segswap learn (its default)")
    parser.add_argument("--workdir", type=Path, help="keep the collection and index here (default: a temporary folder)")
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="learn_speed_"))
    segswap = str(Path(sys.executable).parent / "segswap")
    try:
        images, index = work / "images", work / "index"
        if not images.exists():
            make_collection(images, args.count, args.patterns, args.copies, sides=(300, 400))
        subprocess.run([segswap, "index", str(images), "--index", str(index), "--no-keypoints"], check=True,
                       capture_output=True)
        shutil.rmtree(index / "learned", ignore_errors=True)
        timer = shutil.which("time") or "/usr/bin/time"
        start = time.perf_counter()
        done = subprocess.run([timer, "-f", "peak-kib %M", segswap, "learn", "--index", str(index), "--minutes",
                               str(args.minutes)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"segswap learn failed:\n{done.stderr[-800:]}")
        kib = next(int(line.split()[1]) for line in reversed(done.stderr.splitlines()) if line.startswith("peak-kib"))
        record = json.loads((index / "learned" / "learned.json").read_text())
        stages = record["stages"]
        budget = args.minutes * 60
        print_table(["images", "budget (s)", "segswap learn (s, process start included)", "time / budget",
                     "peak memory (GiB)", "features: updates, mined pairs", "adaptation: updates, mined pairs"],
                    [[args.count, f"{budget:.0f}", f"{seconds:.0f}", f"{seconds / budget:.2f}×", f"{kib / 2**20:.2f}",
                      f"{stages['features']['steps']}, {stages['features']['pairs']}",
                      f"{stages['adapt']['steps']}, {stages['adapt']['pairs']}"]])
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run_and_record(main)
