"""`segswap cosegment` on MSRC's 390 images, end to end from the image files, method by method.

    .venv/bin/python benchmarks/cosegment_speed.py [--root ../shared/data/eval/msrc_coseg] [--methods fusion,segswap,saliency]

Each method runs as its own `segswap cosegment ROOT --out TMP --method M` process (model loading,
decoding, features, pairs, masks and writing included), one after the other, so the default is timed
against the paper's pipeline (`segswap`, the default before the objectness prior) in the same run and
on the same machine state. Reported: wall time, seconds per image, the ratio to `segswap`, and the
process's peak resident memory.

Then, unless ``--no-index``, the default method from an index of the folder: `segswap index` once, and
`segswap cosegment ... --index IDX` twice (the index at the shipped model's size) — the first run reads the features and stores each image's
objectness prior in the index, the second reads both.

Target (issue 20): the default method co-segments the 390 images in ≤ 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, print_table, run_and_record  # noqa: E402

from segswap.collection.folder import image_groups  # noqa: E402
from segswap.collection.methods import COSEG_METHODS as METHODS, DEFAULT_METHOD  # noqa: E402
from segswap.shipped import shipped_input_size  # noqa: E402

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg"
TARGET_SECONDS = 300
REFERENCE = "segswap"


def run_command(root: Path, method: str, out: Path, index: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in GiB) of one `segswap cosegment` process."""
    command = [str(Path(sys.executable).parent / "segswap"), "cosegment", str(root), "--out", str(out), "--method", method]
    return run(command + (["--index", str(index)] if index else []))


def run(command: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    # RUSAGE_CHILDREN's maximum is over the children so far; methods run in order of the list, so the
    # reading after each is that method's peak unless an earlier one used more (then it reads ≥).
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=MSRC)
    parser.add_argument("--methods", default=f"{DEFAULT_METHOD},{REFERENCE},saliency",
                        help="comma-separated; the reference is timed even if not listed")
    parser.add_argument("--reference", default=REFERENCE, help="the method the ratios are to")
    parser.add_argument("--no-index", action="store_true", help="skip the runs from an index")
    add_json_argument(parser)
    args = parser.parse_args()
    if not (args.root / "images").is_dir():
        raise SystemExit(f"{args.root}: no images/ folder (the co-segmentation layout); pass --root")
    methods = [m for m in args.methods.split(",") if m]
    reference_method = args.reference
    unknown = [m for m in methods + [reference_method] if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if reference_method not in methods:
        methods.append(reference_method)
    images = sum(len(group.images) for group in image_groups(args.root).values())
    print(machine_summary())
    print(f"{args.root}: {images} images; methods run one after the other: {', '.join(methods)}")
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            timings[method] = run_command(args.root, method, Path(tmp) / method)
            print(f"  {method}: {timings[method][0]:.1f} s", flush=True)
        if not args.no_index:
            index = Path(tmp) / "index"
            # at the shipped model's size, so that the runs from the index compare with the plain ones
            timings["(segswap index, once)"] = run([str(Path(sys.executable).parent / "segswap"), "index",
                                                     str(args.root), "--index", str(index),
                                                     "--size", str(shipped_input_size())])
            for run_name in ("first", "second"):
                label = f"{DEFAULT_METHOD} --index, {run_name} run"
                timings[label] = run_command(args.root, DEFAULT_METHOD, Path(tmp) / run_name, index)
                print(f"  {label}: {timings[label][0]:.1f} s", flush=True)
    reference = timings[reference_method][0]
    rows = [[m + (" (default)" if m == DEFAULT_METHOD else ""), f"{s:.1f}", f"{1000 * s / images:.0f}",
             f"{s / reference:.2f}", f"{rss:.2f}"] for m, (s, rss) in timings.items()]
    print_table(["method", "wall s", "ms / image", f"× {reference_method}", "peak RSS ≤ GiB"], rows)
    default_seconds = timings.get(DEFAULT_METHOD, (float("nan"),))[0]
    verdict = "met" if default_seconds <= TARGET_SECONDS else "NOT met"
    print(f"target: the default ({DEFAULT_METHOD}) in ≤ {TARGET_SECONDS} s for the {images} images: "
          f"{default_seconds:.0f} s, {verdict}")


if __name__ == "__main__":
    run_and_record(main)
