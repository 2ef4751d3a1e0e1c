"""Indexing a IIIF manifest from a loopback Image API server against indexing the same images from a folder.

    .venv/bin/python benchmarks/iiif_index_speed.py [--canvases 24] [--images DIR ...] [--parallel 4]

The collection is ``--canvases`` images from ``--images`` (default: the shared COCO-128 and photo folders,
about 640×480 JPEGs, repeated under new names). Each is written twice: into a folder, and as a static
level-0 Image API service (``info.json`` listing the file's own size, the file at ``full/W,H/0/default.jpg``)
on a canvas twice its size, with one Presentation 3 manifest listing them all. ``python -m http.server``
serves that site on 127.0.0.1 in its own process. Measured in the same run, default index settings:

* folder — ``update_index`` of the folder into a fresh index;
* IIIF — ``index_manifest`` of the manifest into another: the manifest read, every ``info.json`` and image
  fetched (4 requests at once), then the cache folder indexed;
* IIIF again — the same command on the finished index: the manifest re-read, nothing fetched.

The backbone and keypoint models are loaded (a two-image index) before either run is timed.

Target (issue 40): IIIF ≤ 1.3 × folder at ``--canvases 1000``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_image_folder_arguments, add_json_argument, print_machine, print_table, run_and_record  # noqa: E402

from PIL import Image  # noqa: E402

from segswap.collection.folder import list_images  # noqa: E402
from segswap.collection.update import update_index  # noqa: E402
from segswap.iiif.http import Fetcher  # noqa: E402
from segswap.iiif.index import index_manifest  # noqa: E402


def build(sources: list[Path], count: int, folder: Path, site: Path, base: str) -> str:
    """The folder of ``count`` images and the IIIF site serving the same files; returns the manifest's URL."""
    folder.mkdir(parents=True)
    items = []
    for i in range(count):
        source = sources[i % len(sources)]
        with Image.open(source) as image:
            w, h = image.size
        data = source.read_bytes()
        (folder / f"{i:05d}.jpg").write_bytes(data)
        service = f"{base}/iiif/{i:05d}"
        stored = site / "iiif" / f"{i:05d}" / "full" / f"{w},{h}" / "0" / "default.jpg"
        stored.parent.mkdir(parents=True)
        stored.write_bytes(data)
        (site / "iiif" / f"{i:05d}" / "info.json").write_text(json.dumps({
            "@context": "http://iiif.io/api/image/3/context.json", "id": service, "type": "ImageService3",
            "protocol": "http://iiif.io/api/image", "profile": "level0", "width": 2 * w, "height": 2 * h,
            "sizes": [{"width": w, "height": h}]}))
        canvas = f"{base}/canvas/{i}"
        items.append({"id": canvas, "type": "Canvas", "label": {"none": [f"p. {i + 1}"]}, "width": 2 * w, "height": 2 * h,
                      "items": [{"id": f"{canvas}/page", "type": "AnnotationPage", "items": [{
                          "id": f"{canvas}/image", "type": "Annotation", "motivation": "painting", "target": canvas,
                          "body": {"id": f"{service}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                                   "service": [{"id": service, "type": "ImageService3", "profile": "level0"}]}}]}]})
    (site / "manifest.json").write_text(json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": f"{base}/manifest.json", "type": "Manifest",
        "label": {"en": ["benchmark"]}, "items": items}))
    return f"{base}/manifest.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("the loopback server did not start")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_folder_arguments(parser, workdir=False)
    parser.add_argument("--canvases", type=int, default=24)
    parser.add_argument("--parallel", type=int, default=4)
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    sources = [p for folder in args.images for p in list_images(folder) if p.suffix.lower() in (".jpg", ".jpeg")]
    if not sources:
        sys.exit("no JPEG images found; pass --images DIR")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        manifest = build(sources, args.canvases, tmp / "folder", tmp / "site", f"http://127.0.0.1:{port}")
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                                   str(tmp / "site")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            # The models load once, before either run is timed.
            (tmp / "warm").mkdir()
            for source in sources[:2]:
                shutil.copyfile(source, tmp / "warm" / source.name)
            update_index(tmp / "warm", tmp / "idx-warm", show_progress=False)
            start = time.perf_counter()
            _, folder_summary = update_index(tmp / "folder", tmp / "idx-folder", show_progress=False)
            folder_seconds = time.perf_counter() - start
            start = time.perf_counter()
            _, iiif_summary, fetched = index_manifest(manifest, tmp / "idx-iiif", show_progress=False,
                                                      fetcher=Fetcher(parallel=args.parallel))
            iiif_seconds = time.perf_counter() - start
            start = time.perf_counter()
            _, again_summary, again = index_manifest(manifest, tmp / "idx-iiif", show_progress=False,
                                                     fetcher=Fetcher(parallel=args.parallel))
            again_seconds = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(10)
        assert folder_summary.added == iiif_summary.added == args.canvases, (folder_summary, iiif_summary)
        assert again.fetched == 0 and again_summary.unchanged == args.canvases
        print(f"{args.canvases} canvases, {fetched.bytes / 1e6:.1f} MB fetched in {fetched.seconds:.1f} s "
              f"({fetched.requests} requests, {fetched.retries} retried)")
        print_table(["run", "seconds", "images/s", "× folder"], [
            ["folder (update_index)", f"{folder_seconds:.1f}", f"{args.canvases / folder_seconds:.2f}", "1.00"],
            ["IIIF (index_manifest)", f"{iiif_seconds:.1f}", f"{args.canvases / iiif_seconds:.2f}",
             f"{iiif_seconds / folder_seconds:.2f}"],
            ["IIIF again (nothing fetched)", f"{again_seconds:.1f}", "-", f"{again_seconds / folder_seconds:.2f}"]])
        ratio = iiif_seconds / folder_seconds
        print(f"target IIIF ≤ 1.3 × folder: {'met' if ratio <= 1.3 else 'missed'} ({ratio:.2f})")


if __name__ == "__main__":
    run_and_record(main)
