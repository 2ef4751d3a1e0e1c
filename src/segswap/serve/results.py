"""Saved results the viewer reads and writes beside the index, in ``<index>/viewer/``: the last discovery
(the JSON of `segswap discover --json`), and the co-segmentation masks of `segswap cosegment` with the
user's "this mask is wrong" marks.

``cosegment.json`` keeps paths as the command was given them (relative to where it ran), so each is
found again by its longest tail that exists under the folder it belongs to.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SegswapError
from ..io.files import write_bytes_atomic
from .catalog import Catalog

DISCOVERY_FILE = "discovery.json"
OVERRIDES_FILE = "cosegment-overrides.json"
OVERRIDES_FORMAT = 1


def viewer_folder(index_dir: Path) -> Path:
    """Where the viewer keeps its cache and saved results: a folder inside the index folder."""
    return index_dir / "viewer"


def locate(recorded: str, base: Path) -> Path | None:
    """The file ``recorded`` (a path as a command wrote it) names under ``base``: ``recorded`` itself if
    it exists inside ``base``, else its longest tail that does."""
    path = Path(recorded)
    base = base.resolve()
    if path.is_absolute() and path.resolve().is_relative_to(base) and path.is_file():
        return path.resolve()
    parts = path.parts
    for k in range(len(parts)):
        candidate = (base / Path(*parts[k:])).resolve()
        if candidate.is_relative_to(base) and candidate.is_file():
            return candidate
    return None


def read_discovery(path: Path, catalog: Catalog) -> dict:
    """A saved discovery (`segswap discover --json` of either design), each pattern image and each of its
    folded near-duplicates given its catalogue id (None if it is no longer indexed). A file written
    before patterns had a ``kind`` (spectral only) reads as repeats, its images with no near-duplicates."""
    try:
        data = json.loads(path.read_text())
        data.setdefault("design", "spectral")
        for pattern in data["patterns"]:
            pattern.setdefault("kind", "repeat")
            for member in pattern["images"]:
                image = catalog.by_path(member["path"])
                member["id"] = image.id if image else None
                folded = [catalog.by_path(other) for other in member.setdefault("near_duplicates", [])]
                member["near_duplicate_ids"] = [other.id if other else None for other in folded]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise SegswapError(f"{path}: not the JSON of `segswap discover --json` ({err})") from None
    return {"source": str(path), **data}


@dataclass
class CosegmentedImage:
    key: int
    group: str
    image: Path | None  # the image file found again, None if gone
    image_id: int | None  # its catalogue id, None if it is not in the index
    mask: Path | None
    mask_key: str  # the mask's path relative to the co-segmentation folder: what a mark is saved under
    fallback: bool


class Cosegmentation:
    """The masks of one `segswap cosegment` output folder, and the marks saved for them."""

    def __init__(self, folder: Path, catalog: Catalog, overrides_path: Path):
        self.folder = folder.resolve()
        record = self.folder / "cosegment.json"
        try:
            data = json.loads(record.read_text())
            groups = data["groups"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SegswapError(f"--cosegment {folder}: no cosegment.json from `segswap cosegment` there") from None
        self.method = data.get("method")
        self.entries: list[CosegmentedImage] = []
        for name, group in groups.items():
            for image, mask, fallback in zip(group["images"], group["masks"], group["fallback"]):
                found_image = locate(image, catalog.root)
                found_mask = locate(mask, self.folder)
                in_index = catalog.by_path(found_image) if found_image else None
                mask_key = found_mask.relative_to(self.folder).as_posix() if found_mask else mask
                self.entries.append(CosegmentedImage(len(self.entries), name, found_image, in_index.id if in_index else None,
                                                     found_mask, mask_key, bool(fallback)))
        self.overrides_path = overrides_path
        self._lock = threading.Lock()
        self._marks = self._read_marks()

    def as_json(self) -> dict:
        groups: dict[str, list] = {}
        for e in self.entries:
            groups.setdefault(e.group, []).append({
                "key": e.key, "id": e.image_id, "name": e.image.name if e.image else Path(e.mask_key).name,
                "has_mask": e.mask is not None, "fallback": e.fallback, "wrong": e.mask_key in self._marks})
        return {"folder": str(self.folder), "method": self.method, "overrides": str(self.overrides_path),
                "groups": [{"name": name, "images": images} for name, images in groups.items()]}

    def entry(self, key: int) -> CosegmentedImage | None:
        return self.entries[key] if 0 <= key < len(self.entries) else None

    def mark(self, key: int, wrong: bool) -> None:
        """Record (or clear) "this mask is wrong" for entry ``key``; the file is rewritten atomically."""
        entry = self.entry(key)
        if entry is None:
            raise KeyError(key)
        with self._lock:
            if wrong:
                self._marks[entry.mask_key] = {"image": str(entry.image) if entry.image else None, "group": entry.group,
                                               "marked": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            else:
                self._marks.pop(entry.mask_key, None)
            data = self._read_file()
            data["format"] = OVERRIDES_FORMAT
            data.setdefault("wrong", {})[str(self.folder)] = dict(sorted(self._marks.items()))
            write_bytes_atomic(self.overrides_path, (json.dumps(data, indent=1) + "\n").encode())

    def _read_file(self) -> dict:
        """The marks file: ``{"format": 1, "wrong": {cosegment folder: {mask path: {image, group, marked}}}}``,
        so marks on several output folders of one index live side by side."""
        if not self.overrides_path.is_file():
            return {"format": OVERRIDES_FORMAT, "wrong": {}}
        try:
            data = json.loads(self.overrides_path.read_text())
            if not isinstance(data.get("wrong"), dict):
                raise ValueError("no 'wrong' object")
        except ValueError as err:
            raise SegswapError(f"{self.overrides_path}: not a marks file ({err}); move it away to start afresh") from None
        return data

    def _read_marks(self) -> dict:
        return dict(self._read_file()["wrong"].get(str(self.folder), {}))
