"""What every benchmark prints first: the machine it ran on, and helpers for timing."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

#: The shared training photos: the collections the index, search and viewer benchmarks are built from.
SHARED_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train"


def add_image_folder_arguments(parser, workdir: bool = True) -> None:
    """``--images`` (folders to build the collection from; default the shared COCO-128 and photo folders)
    and, with ``workdir``, ``--workdir`` (keep the indexes there)."""
    parser.add_argument("--images", type=Path, nargs="*",
                        default=[SHARED_TRAIN / "coco128_seg" / "images", SHARED_TRAIN / "photos"])
    if workdir:
        parser.add_argument("--workdir", type=Path, help="keep the indexes here instead of a temporary folder")


#: What a script adds to its ``--json`` record beside the tables (e.g. raw timings).
RECORD_EXTRA: dict = {}
_PARSERS: list = []


def add_json_argument(parser) -> None:
    """``--json FILE``: also write the run's tables, command and machine there (:func:`run_and_record`)."""
    parser.add_argument("--json", type=Path, help="also write the tables, the command and the machine here as JSON "
                                                  "(the docs' performance page is rendered from such files)")
    _PARSERS.append(parser)


def run_and_record(main) -> None:
    """Run the script's ``main()``, then write its ``--json`` record if one was asked for."""
    main()
    for parser in _PARSERS:
        args, _ = parser.parse_known_args()
        write_json(args.json, **RECORD_EXTRA)


def write_json(path: Path | None, **extra) -> None:
    """Write what this run printed with :func:`print_table` to ``path`` (nothing when None): the command that
    ran, the machine, the load average at the end, the tables, and ``extra``."""
    if path is None:
        return
    import json
    import shlex
    import sys

    command = shlex.join([".venv/bin/python", *sys.argv])
    record = {"command": command, "machine": machine_summary(), "load_average": round(os.getloadavg()[0], 2),
              "tables": PRINTED_TABLES, **extra}
    from segswap.io.files import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode())


def print_machine() -> None:
    """The machine summary and the load average when the run starts (other work skews the times)."""
    print(machine_summary())
    print(f"load average at start: {os.getloadavg()[0]:.2f}")


def machine_summary() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    mem = ""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages * size / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return (f"machine: {cpu}, {os.cpu_count()} logical cores{mem}; Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def median_time(fn, repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_gflops(n: int = 2048) -> float:
    """The machine's measured fp32 matmul rate (GFLOP/s), the yardstick for achieved efficiency."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: a @ b, repeats=9) / 1e9


#: Every table printed in this run, in order: what ``--json`` writes (:func:`write_json`).
PRINTED_TABLES: list[dict] = []


def print_table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    """Print a Markdown table, and keep it for :func:`write_json`."""
    PRINTED_TABLES.append({"title": title, "header": [str(h) for h in headers],
                           "rows": [[str(c) for c in row] for row in rows]})
    if title:
        print(f"\n{title}")
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))
