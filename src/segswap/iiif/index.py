"""`segswap index MANIFEST --index IDX`: a IIIF manifest (or collection) indexed through its cache folder.

1. The manifest is read and checked whole (:mod:`segswap.iiif.manifests`): a malformed one is one line and
   nothing is written.
2. The cache ``IDX/iiif-cache/`` is brought in step with it (:mod:`segswap.iiif.cache`): only the canvases
   whose file is missing are fetched, those that left the manifest are deleted.
3. That folder is indexed as any folder is (:func:`segswap.collection.update.update_index`: resumable in
   batches, incremental), with the canvas of every file recorded first.

``IDX/iiif.json`` names the source the index follows; indexing another source into it is refused, as
indexing another folder is. A run killed anywhere resumes: fetched files stay, committed batches stay.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..collection.canvases import CanvasSource
from ..collection.index import readable_settings
from ..collection.update import update_index
from ..errors import SegswapError
from ..io.files import write_bytes_atomic
from ..progress import stage
from .cache import cache_folder, synchronise
from .http import Fetcher
from .manifests import CanvasImage, check_source, is_remote, read_source

SOURCE_FILE = "iiif.json"


def index_manifest(source: str, index_dir, *, backbone: str | None = None, size: int | None = None,
                   runtime: str = "auto", show_progress: bool = True, engine=None, keypoints: bool | None = None,
                   details: bool | None = None, fetcher: Fetcher | None = None):
    """Index (or update the index of) the IIIF manifest or collection at ``source`` (an http(s) URL or a
    JSON file) into ``index_dir``; returns (the index, its :class:`UpdateSummary`, the :class:`FetchSummary`).
    ``fetcher``: the HTTP side (default :class:`Fetcher`: 4 requests at once, 4 tries each)."""
    check_source(source)
    source = source if is_remote(source) else str(Path(source).resolve())
    index_dir = Path(index_dir)
    cache = cache_folder(index_dir)
    _check_index(index_dir, cache, source)
    fetcher = fetcher or Fetcher()
    try:
        with stage("reading the manifest", show_progress):
            reading = read_source(source, fetcher)
        for why in reading.skipped:
            print(f"warning: skipped canvas {why}", file=sys.stderr, flush=True)
        if not any(manifest.canvases for manifest in reading.manifests) and not reading.unreachable:
            raise SegswapError(f"{source}: no canvas of it paints an image; nothing indexed")
        write_bytes_atomic(index_dir / SOURCE_FILE, (json.dumps({"source": source}, indent=1) + "\n").encode())
        canvases, fetched = synchronise(reading, cache, fetcher, show_progress=show_progress)
    finally:
        fetcher.close()
    if not canvases and not (index_dir / "index.sqlite").is_file():
        raise SegswapError(f"{source}: no canvas image could be fetched ({len(fetched.missing)} missing, "
                           f"{len(fetched.failed)} failed); nothing indexed")
    index, summary = update_index(cache, index_dir, backbone=backbone, size=size, runtime=runtime,
                                  show_progress=show_progress, engine=engine, keypoints=keypoints, details=details,
                                  canvases={path: canvas_source(canvas) for path, canvas in canvases.items()})
    return index, summary, fetched


def canvas_source(canvas: CanvasImage) -> CanvasSource:
    return CanvasSource(canvas.manifest, canvas.manifest_label, canvas.id, canvas.label, canvas.position, canvas.size,
                        canvas.region, canvas.image if canvas.service is None else canvas.service.id)


def indexed_source(index_dir: Path) -> str | None:
    """The manifest or collection ``index_dir`` follows, or None (a folder's index, or no index)."""
    try:
        return json.loads((Path(index_dir) / SOURCE_FILE).read_text())["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_index(index_dir: Path, cache: Path, source: str) -> None:
    """Refuse an index folder that follows another manifest, or indexes a folder."""
    followed = indexed_source(index_dir)
    if followed is not None and followed != source:
        raise SegswapError(f"{index_dir}: follows {followed}, not {source}; choose another --index folder "
                           "(a IIIF collection puts several manifests in one index)")
    if (index_dir / "index.sqlite").is_file():
        root = readable_settings(index_dir).get("root")
        if root is not None and Path(root) != cache.resolve():
            raise SegswapError(f"{index_dir}: indexes the folder {root}, not a IIIF manifest; choose another --index folder")
