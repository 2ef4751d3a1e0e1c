"""How a folder of images splits into groups to co-segment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io.paths import list_images


@dataclass(frozen=True)
class ImageGroup:
    """Images co-segmented together; each mask goes to ``<out>/<subfolder>/<path relative to base>``."""

    images: list[Path]
    base: Path
    subfolder: str


def image_groups(root: Path) -> dict[str, ImageGroup]:
    """The groups of folder ``root``, by name, without empty ones.

    A co-segmentation layout (``images/<group>/...``) gives its groups; otherwise each sub-folder is a
    group (its own sub-folders included), and the images directly in ``root`` are one more group named
    after ``root``, whose masks go straight into the output folder.
    """
    root = Path(root)
    layout = root / "images"
    if layout.is_dir() and _subfolders(layout):
        return _non_empty({d.name: ImageGroup(list_images(d), d, d.name) for d in _subfolders(layout)})
    groups = {d.name: ImageGroup(list_images(d), d, d.name) for d in _subfolders(root)}
    loose = ImageGroup(list_images(root, recursive=False), root, "")
    name = root.resolve().name or str(root)
    groups = {(name if name not in groups else f"{name} (top level)"): loose, **groups}
    return _non_empty(groups)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _non_empty(groups: dict[str, ImageGroup]) -> dict[str, ImageGroup]:
    return {name: group for name, group in groups.items() if group.images}
