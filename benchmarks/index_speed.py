"""Indexing speed (`segswap index`) against plain backbone feature extraction of the same files.

    .venv/bin/python benchmarks/index_speed.py [--images DIR] [--count 200] [--size 480]

The collection is ``--images`` (default: the shared COCO-128 and photo folders, about 640×480 JPEGs,
repeated under new names up to ``--count`` files). Measured in the same run:

* reference — a loop decoding each file, resizing it and running the backbone, nothing else;
* ``update_index`` on a fresh index — the same, plus hashing, float16 shards, regional descriptors,
  SQLite commits, the FAISS file;
* ``update_index`` again with nothing changed — the incremental scan.

Target: ≥ 8 images/s at 480 px on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_image_folder_arguments, add_json_argument, print_machine, print_table, run_and_record  # noqa: E402

from segswap.backbone import DEFAULT_BACKBONE, get_backbone  # noqa: E402
from segswap.collection.features import model_input  # noqa: E402
from segswap.collection.folder import list_images  # noqa: E402
from segswap.collection.update import update_index  # noqa: E402



def collection(folder: Path, sources: list[Path], count: int) -> None:
    """``count`` image files in ``folder``: the sources, hard-linked (or copied) under new names."""
    folder.mkdir(parents=True)
    for i in range(count):
        source = sources[i % len(sources)]
        target = folder / f"{i:05d}{source.suffix.lower()}"
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_folder_arguments(parser, workdir=False)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=480)
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    sources = [p for folder in args.images for p in list_images(folder)]
    if not sources:
        sys.exit("no images found; pass --images DIR")
    backbone = get_backbone(DEFAULT_BACKBONE)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        collection(folder, sources, args.count)
        files = list_images(folder)
        for path in files:  # both runs read from the page cache
            path.read_bytes()
        backbone(model_input(files[0], args.size)[0])  # warm-up: the ONNX session, first-call costs

        start = time.perf_counter()
        for path in files:
            backbone(model_input(path, args.size)[0])
        reference = time.perf_counter() - start

        start = time.perf_counter()
        _, summary = update_index(folder, Path(tmp) / "idx", size=args.size, show_progress=False)
        indexing = time.perf_counter() - start
        assert summary.added == len(files), summary.line()

        start = time.perf_counter()
        update_index(folder, Path(tmp) / "idx", show_progress=False)
        rescan = time.perf_counter() - start

    n = len(files)
    print(f"\n{n} files ({len(sources)} distinct images), features at {args.size} px with {backbone.name} "
          f"({backbone.runtime})\n")
    print_table(["run", "seconds", "images/s", "time vs reference"], [
        ["reference: decode + resize + backbone", f"{reference:.1f}", f"{n / reference:.1f}", "1.00×"],
        ["segswap index, new index", f"{indexing:.1f}", f"{n / indexing:.1f}", f"{indexing / reference:.2f}×"],
        ["segswap index, nothing changed", f"{rescan:.2f}", f"{n / rescan:.0f}", f"{rescan / reference:.3f}×"],
    ])


if __name__ == "__main__":
    run_and_record(main)
