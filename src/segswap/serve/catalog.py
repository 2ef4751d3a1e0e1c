"""What the viewer lists and may serve: the index's images, by folder, and the folders files may come from.

The catalogue is read once when the server starts (one query, no features), so paging through
10,000 images is a slice of a list. Every file the server sends is either looked up by an image id
from this catalogue, or a relative path checked by :func:`resolve_inside` against the allowed folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..collection.canvases import CanvasSource
from ..collection.index import CollectionIndex
from ..errors import SegswapError

#: Longest relative path a request may name (longer ones are refused before touching the disk).
MAX_PATH_CHARS = 1024
#: Images per page of the collection, and the most one request may ask for.
PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class CatalogImage:
    id: int
    path: str  # relative to the indexed folder, '/'-separated
    folder: str  # the folder of ``path`` ('' for the images directly in the indexed folder)
    size: tuple[int, int]  # (w, h)
    sha1: str
    canvas: CanvasSource | None = None  # the IIIF canvas, for an image fetched from a manifest

    def as_json(self) -> dict:
        return {"id": self.id, "path": self.path, "folder": self.folder, "width": self.size[0], "height": self.size[1],
                "canvas": None if self.canvas is None else self.canvas.as_json()}


class Catalog:
    """The images of an index, by path (for an index made from IIIF manifests: by manifest folder, then in the
    manifest's canvas order), with their folders; lookups by id and by absolute path."""

    def __init__(self, index: CollectionIndex):
        self.root = index.root
        canvases = index.canvases()
        self.images = [CatalogImage(i, p, p.rpartition("/")[0], size, sha1, canvases.get(p))
                       for i, p, size, sha1 in index.listing()]
        if canvases:
            self.images.sort(key=lambda image: (image.folder, image.canvas.position if image.canvas else -1, image.path))
        self._by_id = {image.id: image for image in self.images}
        self._by_path = {os.path.normpath(self.root / image.path): image for image in self.images}
        self._position = {image.id: k for k, image in enumerate(self.images)}

    def __len__(self) -> int:
        return len(self.images)

    def get(self, image_id: int) -> CatalogImage | None:
        return self._by_id.get(image_id)

    def by_path(self, path: str | os.PathLike) -> CatalogImage | None:
        """The image at absolute ``path`` (as `segswap discover --json` writes them), or None."""
        return self._by_path.get(os.path.normpath(path))

    def absolute(self, image: CatalogImage) -> Path:
        return self.root / image.path

    def folders(self) -> list[dict]:
        """Each folder holding images, with their number, by name."""
        counts: dict[str, int] = {}
        for image in self.images:
            counts[image.folder] = counts.get(image.folder, 0) + 1
        return [{"name": name, "count": count} for name, count in sorted(counts.items())]

    def page(self, folder: str | None, offset: int, limit: int) -> tuple[int, list[CatalogImage]]:
        """The images of ``folder`` (all with None), from ``offset``: (how many in total, the page)."""
        chosen = self.images if folder is None else [image for image in self.images if image.folder == folder]
        offset, limit = max(0, offset), min(max(1, limit), MAX_PAGE_SIZE)
        return len(chosen), chosen[offset:offset + limit]

    def neighbours(self, image_id: int) -> tuple[int | None, int | None]:
        """The ids before and after ``image_id`` in path order."""
        k = self._position[image_id]
        before = self.images[k - 1].id if k > 0 else None
        after = self.images[k + 1].id if k + 1 < len(self.images) else None
        return before, after


def resolve_inside(relative: str, roots: list[Path]) -> Path:
    """The existing file ``relative`` names inside one of ``roots``, symlinks resolved; a
    :class:`SegswapError` for an absolute path, a ``..`` part, an over-long name, or a file whose real
    place is outside every root (a symlink out of the collection)."""
    if len(relative) > MAX_PATH_CHARS or "\x00" in relative:
        raise SegswapError("path refused: too long or not text")
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if not parts or relative.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise SegswapError("path refused: only paths relative to the collection, without '..'")
    for root in roots:
        real_root = root.resolve()
        candidate = (real_root / Path(*parts)).resolve()
        if candidate.is_relative_to(real_root) and candidate.is_file():
            return candidate
    raise SegswapError("no such file in the collection")


def open_catalog(index_dir: Path) -> Catalog:
    """The catalogue of the index at ``index_dir`` (a one-line error if it is not one)."""
    with CollectionIndex(index_dir) as index:
        if len(index) == 0:
            raise SegswapError(f"{index_dir}: the index holds no image yet")
        return Catalog(index)
