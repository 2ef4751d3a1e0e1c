"""Rule M1 (lab/rules.md): `segswap discover`'s time and peak memory at several pair-model batch sizes.

    .venv/bin/python lab/discover_batch_memory.py --batches 16 8 4 [--count 1000]

Builds `benchmarks/discover_speed.py`'s synthetic collection, indexes it at 480 px, then runs `segswap discover`
(default design, shipped weights) in a fresh process per batch size (`segswap.collection.predictions.PAIR_BATCH`
set before the command runs), one after the other; GNU time gives each peak. The patterns are compared with
the first batch's (image sets; boxes within 16 px).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from discover_speed import make_collection  # noqa: E402

from segswap.collection.update import update_index  # noqa: E402

COMMAND = ("import sys, segswap.collection.predictions as p; p.PAIR_BATCH = int(sys.argv.pop(1)); "
           "from segswap.cli import main; sys.argv[0] = 'segswap'; main()")


def run(index: Path, batch: int, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "peak-kib %M", sys.executable, "-c", COMMAND, str(batch), "discover",
                           "--index", str(index), "--json", str(out)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-800:])
    kib = next(int(line.split()[1]) for line in reversed(done.stderr.splitlines()) if line.startswith("peak-kib"))
    return seconds, kib / 2**20


def same_patterns(a: dict, b: dict, tolerance: int = 16) -> bool:
    def key(found):
        return [[(m["path"], m["box"]) for m in p["images"]] for p in found["patterns"]]
    if len(a["patterns"]) != len(b["patterns"]):
        return False
    for pa, pb in zip(key(a), key(b)):
        if [path for path, _ in pa] != [path for path, _ in pb]:
            return False
        if any(abs(x - y) > tolerance for (_, ba), (_, bb) in zip(pa, pb) for x, y in zip(ba, bb)):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 8, 4])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_collection(Path(tmp) / "images", args.count, 50, 8)
        index, _ = update_index(Path(tmp) / "images", Path(tmp) / "idx", size=480, show_progress=False)
        rows, first = [], None
        for batch in args.batches:
            out = Path(tmp) / f"found-{batch}.json"
            seconds, peak = run(Path(tmp) / "idx", batch, out)
            found = json.loads(out.read_text())
            first = first or (seconds, found)
            rows.append((batch, seconds, peak, same_patterns(first[1], found), found["summary"]))
            print(f"batch {batch}: {seconds:.0f} s ({seconds / first[0]:.2f}× the first), peak {peak:.3f} GiB, "
                  f"same patterns as the first: {rows[-1][3]}; {found['summary']}", flush=True)


if __name__ == "__main__":
    main()
