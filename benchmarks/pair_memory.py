"""Peak memory and wall time of `segswap pair` on the largest and most extreme images it accepts.

    .venv/bin/python benchmarks/pair_memory.py [--workdir DIR]

Writes the test images (a 60000×16 strip, a 24-megapixel JPEG, a 120-megapixel PNG: the largest file
decoded, downscaled to 24 megapixels as every image above that is) and runs `segswap pair` on pairs of
them with its defaults (shipped weights, five views, the objectness prior), each in a fresh process as
a user would. Prints the machine, then per pair the wall time and the peak resident memory of the
process (the kernel's account, from wait4). The reference row is the demo pair.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import SHARED_TRAIN, add_json_argument, print_machine, print_table, run_and_record  # noqa: E402


def write_images(folder: Path) -> dict[str, Path]:
    photo = cv2.imread(str(SHARED_TRAIN / "photos" / "darknet_dog.jpg"))
    strip = np.zeros((16, 60000), np.uint8)
    strip[:, ::64] = 255
    images = {"strip 60000×16 (PNG)": (folder / "strip.png", strip, []),
              "photo 6000×4000 (JPEG)": (folder / "24mp.jpg", cv2.resize(photo, (6000, 4000)), []),
              "photo 11000×10900 (PNG, decoded at 1/3)": (folder / "120mp.png", cv2.resize(photo, (11000, 10900)),
                                                          [cv2.IMWRITE_PNG_COMPRESSION, 1])}
    for path, pixels, options in images.values():
        if not path.exists():
            cv2.imwrite(str(path), pixels, options)
    return {name: path for name, (path, _, _) in images.items()}


def run_pair(image_a: Path, image_b: Path, out: Path) -> tuple[float, int, int]:
    """Seconds, peak resident bytes and exit status of `segswap pair A B --out OUT` in a fresh process."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", "from segswap.cli import main; main()", "pair", str(image_a),
                                str(image_b), "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - start, usage.ru_maxrss * 1024, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the test images here instead of a temporary folder")
    add_json_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.workdir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        images = write_images(folder)
        demo = Path(str(resources.files("segswap") / "data"))
        strip, photo, largest = images.values()
        pairs = {"reference: the demo pair": (demo / "box.png", demo / "box_in_scene.png"),
                 "strip × demo box": (strip, demo / "box.png"), "strip × 24 MP photo": (strip, photo),
                 "24 MP photo × 24 MP photo": (photo, photo), "120 MP PNG × 120 MP PNG": (largest, largest)}
        print_machine()
        print("images: " + "; ".join(f"{name} {path.stat().st_size / 1e3:,.0f} kB" for name, path in images.items()) + "\n")
        rows = []
        for name, (a, b) in pairs.items():
            seconds, peak, status = run_pair(a, b, folder / "out")
            rows.append([name, f"{seconds:.1f}", f"{peak / 2**30:.2f}", "ok" if status == 0 else f"exit {status}"])
        print_table(["pair", "seconds", "peak GiB", "status"], rows)


if __name__ == "__main__":
    run_and_record(main)
