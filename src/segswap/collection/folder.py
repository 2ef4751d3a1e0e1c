"""Which files of a folder are images, and how a co-segmentation layout folder splits into groups."""

from __future__ import annotations

from pathlib import Path

#: File name endings taken as images (case-insensitive); anything else in a folder is ignored.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"})


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursively), sorted; hidden files and folders are skipped."""
    root = Path(root)
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found)


def coseg_groups(root: Path) -> dict[str, list[Path]] | None:
    """For a co-segmentation layout folder (``images/<group>/*``), its groups' images; else None."""
    images = Path(root) / "images"
    if not images.is_dir():
        return None
    groups = {d.name: list_images(d) for d in sorted(images.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    groups = {name: paths for name, paths in groups.items() if paths}
    return groups or None
