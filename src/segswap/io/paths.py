"""Which files are images, and checks on the paths a command is given, before any work starts.

Imports nothing numerical, so the command line can refuse a missing input or an unwritable output in
a fraction of a second, before torch, onnxruntime and OpenCV load.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ..errors import SegswapError

#: File name endings taken as images (case-insensitive), everywhere in the package.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"})
#: Longest file name (bytes) that Linux, macOS and Windows file systems all take.
DEFAULT_NAME_MAX = 255


def is_image_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Image files in ``root`` (and its sub-folders with ``recursive``), sorted; hidden files and
    folders are skipped. Symlinked files and folders are followed; each real folder is read once, so a
    link back to an ancestor ends there instead of looping."""
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = [name for name in subfolders if not name.startswith(".")] if recursive else []
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".") and is_image_name(name) and path.is_file():
                found.append(path)
    return sorted(found)


def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is an existing file; else a one-line :class:`SegswapError` calling it a ``what``."""
    return _check_existing(Path(path), "file", what)


def check_input_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is an existing folder; else a one-line :class:`SegswapError`."""
    return _check_existing(Path(path), "folder", "folder")


def _check_existing(path: Path, kind: str, what: str) -> Path:
    found = _kind(path)
    if found is None:
        raise SegswapError(f"{path}: no such {what}")
    if found != kind:
        raise SegswapError(f"{path}: is a {found}, not a {what}")
    return path


def _kind(path: Path) -> str | None:
    """"folder", "file" (anything else that exists), or None when ``path`` cannot be reached at all
    (missing, a name too long, a file where a folder should be)."""
    try:
        return "folder" if stat.S_ISDIR(path.stat().st_mode) else "file"
    except OSError:
        return None


def check_output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """``path`` if a command can create or fill it as a folder; else a one-line :class:`SegswapError`
    naming ``option``."""
    path = _check_new_path(path, option)
    if path.exists() and not path.is_dir():
        raise SegswapError(f"{option} {path}: is a file, not a folder")
    return path


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` if a command can write it as a file; else a one-line :class:`SegswapError` naming
    ``option``."""
    path = _check_new_path(path, option)
    if path.is_dir():
        raise SegswapError(f"{option} {path}: is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise SegswapError(f"{option} {path}: not writable")
    return path


def _check_new_path(path: str | os.PathLike, option: str) -> Path:
    """The checks shared by output files and folders: a non-empty path whose names fit the file system,
    under an existing folder (not a file) that can be written in."""
    if not str(path).strip():
        raise SegswapError(f"{option}: empty path")
    path = Path(path)
    too_long = next((n for n in path.parts if len(os.fsencode(n)) > DEFAULT_NAME_MAX), None)
    if too_long is not None:
        raise SegswapError(f"{option}: the name {too_long[:40]}... is longer than {DEFAULT_NAME_MAX} bytes")
    existing = path.absolute()
    while _kind(existing) is None and existing != existing.parent:
        existing = existing.parent
    if existing != path.absolute() and _kind(existing) != "folder":
        raise SegswapError(f"{option} {path}: {existing} is a file, not a folder")
    ancestor = existing if _kind(existing) == "folder" else existing.parent
    problem = _cannot_create_in(ancestor)
    if problem:
        raise SegswapError(f"{option} {path}: cannot write in {ancestor} ({problem})")
    return path


def _cannot_create_in(folder: Path) -> str | None:
    """Why no file can be created in ``folder``, or None if one can. A file is made and removed: the
    permission bits do not tell (root passes them, and /proc and /sys claim to be writable)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".segswap-write-check-")
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(handle)
    os.unlink(probe)
    return None
