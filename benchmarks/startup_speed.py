"""What a fresh process costs before any work (issue 38, item 4): `segswap --help`, an argument error, and
`segswap pair` on one pair from a cold process, each against a reference timed in the same run.

    .venv/bin/python benchmarks/startup_speed.py [--repeats 5] [--json startup.json]

References: a Python process that only imports torch (`python -c "import torch"`), and one that imports
torch, loads the default pair model and runs `Matcher.match` on the same pair (the work `segswap pair`
must do at the least). Each row is the median wall time of ``--repeats`` fresh processes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import RECORD_EXTRA, add_json_argument, machine_summary, print_table, run_and_record  # noqa: E402

import segswap  # noqa: E402

BIN = Path(sys.executable).parent
DATA = Path(segswap.__file__).parent / "data"
A, B = DATA / "box.png", DATA / "box_in_scene.png"


def timed(command: list[str], repeats: int, expect: int = 0) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode != expect:
            raise SystemExit(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr.decode()[-500:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    print(machine_summary())
    python, cli = str(BIN / "python"), str(BIN / "segswap")
    with tempfile.TemporaryDirectory() as out:
        rows = {
            "python -c 'import torch'": timed([python, "-c", "import torch"], args.repeats),
            "segswap --help": timed([cli, "--help"], args.repeats),
            "segswap pair MISSING b.png (argument error)": timed([cli, "pair", f"{out}/missing.png", str(B), "--out", out],
                                                                 args.repeats, expect=2),
            "python: import torch, load(), match(a, b)": timed(
                [python, "-c", f"import torch, segswap; segswap.load().match({str(A)!r}, {str(B)!r})"], args.repeats),
            "segswap pair a b --out DIR (cold)": timed([cli, "pair", str(A), str(B), "--out", out], args.repeats),
        }
    torch_s, floor = rows["python -c 'import torch'"], rows["python: import torch, load(), match(a, b)"]
    table = [[name, f"{seconds:.2f}", f"{seconds / torch_s:.2f}×", f"{seconds / floor:.2f}×"]
             for name, seconds in rows.items()]
    print_table(["process", "seconds (median)", "vs import torch", "vs torch + one pair"], table)
    RECORD_EXTRA.update(repeats=args.repeats, seconds={k: round(v, 3) for k, v in rows.items()})


if __name__ == "__main__":
    run_and_record(main)
