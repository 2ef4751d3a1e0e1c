"""The index's copy of a IIIF collection's images: ``IDX/iiif-cache/<manifest>/<key>.<ext>``, one file per
canvas, fetched at the size the index needs rather than the full-resolution original.

The index stores features at its size (320 px long side by default) and keypoints extracted at 640 px
(:data:`segswap.shipped.INDEX_KEYPOINTS`): each image is asked for at :data:`FETCH_SIDE` px on its long side,
which serves both and the viewer's pages. How, by what the Image API service offers (its ``info.json``):

* the ``sizes`` it lists (all a level-0 static service holds besides the full image): the smallest whose
  long side reaches ``FETCH_SIDE``, else the largest, in the canonical form each version stores it under
  (``w,`` in 2.x, ``w,h`` in 3.0);
* level 2: ``!S,S`` (best fit within S×S, S = ``FETCH_SIDE`` within the service's ``maxWidth``,
  ``maxHeight``, ``maxArea``); level 1: ``w,`` for that fit;
* otherwise (a level-0 service listing no sizes, an image without a service): the full image.
Never more than the image's own size (``max``/``full`` when it is no larger).

A file appears whole or not at all (written beside, renamed into place), so a killed run leaves nothing
half-written, and the next run fetches only the canvases whose file is missing. A file whose canvas left
the manifest is deleted (the index then forgets it). The cache key is the canvas id and the image service
(or image) it paints: a canvas painting another image gets a new file.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..io.files import write_bytes_atomic
from .http import FetchError, Fetcher, Missing, ServerFailure
from .manifests import CanvasImage, Reading

CACHE = "iiif-cache"
#: Long side in px asked of the Image API: the index's features (320) and keypoints (640) and the viewer's pages.
FETCH_SIDE = 1024
#: A fetched file's suffix, by its first bytes.
_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF8", ".gif"), (b"II*\x00", ".tif"),
          (b"MM\x00*", ".tif"), (b"BM", ".bmp"))
#: This many server failures in a row (each after its retries) stop the fetching: the server is down.
GIVE_UP_AFTER = 8


@dataclass
class FetchSummary:
    fetched: int = 0
    cached: int = 0  # already in the cache: not fetched again
    missing: list[str] = field(default_factory=list)  # canvases whose image the server does not have (4xx)
    failed: list[str] = field(default_factory=list)  # canvases the server failed for (5xx after retries)
    removed: int = 0  # cached files whose canvas left the manifest
    stopped: bool = False  # the server failed GIVE_UP_AFTER times in a row: the rest was not asked for
    bytes: int = 0
    seconds: float = 0.0
    requests: int = 0
    retries: int = 0

    def line(self) -> str:
        rate = f" ({self.bytes / 1e6:.1f} MB, {self.fetched / self.seconds:.1f} canvases/s)" if self.fetched and self.seconds > 0 else ""
        said = (f"IIIF: {self.fetched} canvases fetched{rate}, {self.cached} already cached, {self.removed} removed, "
                f"{len(self.missing)} without an image, {len(self.failed)} failed (server errors); "
                f"{self.requests} requests, {self.retries} retried")
        if self.failed or self.stopped:
            said += "; run the command again to fetch the rest"
        return said


def cache_folder(index_dir: Path) -> Path:
    return Path(index_dir) / CACHE


def cached_files(cache: Path) -> dict[tuple[str, str], Path]:
    """The complete files of the cache by (manifest folder, key); leftovers of killed writes are deleted."""
    found = {}
    if not cache.is_dir():
        return found
    for folder in cache.iterdir():
        if not folder.is_dir():
            continue
        for file in folder.iterdir():
            if file.name.startswith(".") and file.name.endswith(".tmp"):  # an atomic write that never finished
                file.unlink(missing_ok=True)
            elif file.is_file() and not file.name.startswith("."):
                found[(folder.name, file.stem)] = file
    return found


def synchronise(reading: Reading, cache: Path, fetcher: Fetcher, *, show_progress: bool = True
                ) -> tuple[dict[str, CanvasImage], FetchSummary]:
    """Bring ``cache`` in step with ``reading``: fetch the canvases whose file is missing, delete the files of
    canvases no longer listed (but those of manifests that could not be reached). Returns the canvas of every
    cached file (path relative to ``cache`` → canvas) and what was done."""
    start = time.perf_counter()
    summary = FetchSummary()
    existing = cached_files(cache)
    wanted: dict[tuple[str, str], CanvasImage] = {}
    for manifest in reading.manifests:
        for canvas in manifest.canvases:
            wanted[(manifest.folder, canvas.key)] = canvas
    kept_folders = {_folder_of(manifest_id) for manifest_id, _ in reading.unreachable}
    for key, file in existing.items():
        if key not in wanted and key[0] not in kept_folders:
            file.unlink(missing_ok=True)
            summary.removed += 1
    files = {key: file for key, file in existing.items() if key in wanted}
    summary.cached = len(files)
    todo = [(key, canvas) for key, canvas in wanted.items() if key not in files]
    if todo:
        _fetch_all(todo, cache, fetcher, files, summary, show_progress)
    summary.seconds = time.perf_counter() - start
    summary.requests, summary.retries = fetcher.requests, fetcher.retries
    return {file.relative_to(cache).as_posix(): wanted[key] for key, file in files.items()}, summary


def _folder_of(manifest_id: str) -> str:
    from .manifests import manifest_folder

    return manifest_folder(manifest_id)


def _fetch_all(todo, cache: Path, fetcher: Fetcher, files: dict, summary: FetchSummary, show_progress: bool) -> None:
    progress = tqdm(total=len(todo), unit="canvas", desc="fetching", disable=not show_progress)
    in_a_row = 0
    with ThreadPoolExecutor(max_workers=fetcher.parallel) as pool:
        pending = {pool.submit(fetch_canvas, canvas, cache / key[0], fetcher): (key, canvas) for key, canvas in todo}
        for future in as_completed(pending):
            key, canvas = pending[future]
            progress.update(1)
            try:
                file, size = future.result()
            except Missing as err:
                summary.missing.append(canvas.id)
                progress.write(f"warning: no image for {_name(canvas)}: {err}", file=sys.stderr)
                in_a_row = 0
                continue
            except FetchError as err:  # ServerFailure, or a body that is no image
                summary.failed.append(canvas.id)
                progress.write(f"warning: not fetched, {_name(canvas)}: {err}", file=sys.stderr)
                in_a_row += isinstance(err, ServerFailure)
                if in_a_row >= GIVE_UP_AFTER and not summary.stopped:
                    summary.stopped = True
                    for other in pending:
                        other.cancel()
                    progress.write(f"warning: the server failed {in_a_row} requests in a row: stopped asking; "
                                   "the canvases fetched so far are indexed", file=sys.stderr)
                continue
            except Exception:
                for other in pending:
                    other.cancel()
                raise
            in_a_row = 0
            files[key] = file
            summary.fetched += 1
            summary.bytes += size
    summary.failed += [canvas.id for future, (_, canvas) in pending.items() if future.cancelled()]
    progress.close()


def _name(canvas: CanvasImage) -> str:
    return f"canvas {canvas.label or canvas.id!r} ({canvas.id}) of {canvas.manifest}"


def fetch_canvas(canvas: CanvasImage, folder: Path, fetcher: Fetcher) -> tuple[Path, int]:
    """Fetch one canvas's image into ``folder`` (atomically); its path and size in bytes."""
    url = image_url(canvas, fetcher)
    response = fetcher.get(url)
    data = response.content
    suffix = _suffix(data)
    if suffix is None:
        raise FetchError(f"{url}: the answer is not an image ({response.headers.get('content-type', 'no type')}, "
                         f"{len(data)} bytes)", url, response.status_code)
    target = folder / f"{canvas.key}{suffix}"
    write_bytes_atomic(target, data)
    return target, len(data)


def image_url(canvas: CanvasImage, fetcher: Fetcher) -> str:
    """The URL of the canvas's image at the size the index needs (see the module docstring)."""
    if canvas.service is None:
        return canvas.image
    import dataclasses

    import iiisight

    info = fetcher.get_json(f"{canvas.service.id.rstrip('/')}/info.json", "image information (info.json)")
    if not isinstance(info, dict):
        raise FetchError(f"{canvas.service.id}/info.json: not an image information document", canvas.service.id)
    service = dataclasses.replace(iiisight.parse_info(info), id=canvas.service.id.rstrip("/"))
    return service.url(region="full", size=size_token(service))


def size_token(service) -> str:
    """The Image API size parameter for :data:`FETCH_SIDE` on a loaded iiisight ``ImageService``."""
    width, height, level = service.width, service.height, service.compliance_level or ""
    if service.sizes:  # what the server holds ready (all a static level-0 service holds but the full image)
        sizes = sorted(service.sizes, key=lambda s: max(s.width, s.height))
        chosen = next((s for s in sizes if max(s.width, s.height) >= FETCH_SIDE), sizes[-1])
        return f"{chosen.width}," if service.api_version == 2 else f"{chosen.width},{chosen.height}"
    if width and height and max(width, height) <= FETCH_SIDE:
        return "max"  # iiisight writes 'full' for a 2.x service
    side = FETCH_SIDE
    for limit in (service.max_width, service.max_height):
        side = min(side, limit) if limit else side
    if service.max_area:
        side = min(side, int(service.max_area ** 0.5))
    if level.endswith("2"):
        return f"!{side},{side}"
    if level.endswith("1") and width and height:
        fit = side if width >= height else max(1, round(side * width / height))
        return f"{fit},"
    return "max"


def _suffix(data: bytes) -> str | None:
    """The file suffix of an image by its first bytes (what it is, whatever its Content-Type says), or None."""
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None  # an error page served as 200, or a format segswap does not read
