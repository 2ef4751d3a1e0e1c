"""The pictures the pages show, as JPEG or PNG bytes: thumbnails and large views cached on disk,
crops of a box, mask overlays.

Thumbnails and views are cached in ``<index>/viewer/pictures/<kind>/<key>.jpg``, keyed by the image's
content hash, so a changed file gets a new picture and two copies of one file share theirs. A cached
picture is one file read: the collection page of a 10,000-image index costs its 100 reads.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..io import load_image
from ..io.files import write_bytes_atomic
from .catalog import CatalogImage

#: Long side in px of each cached kind.
SIDES = {"thumb": 256, "view": 1400}
JPEG_QUALITY = 85
#: Long side of a crop in a discovery strip.
CROP_SIDE = 200
#: The tint of a mask overlay (RGB) and its opacity.
MASK_COLOUR = (255, 60, 200)
MASK_ALPHA = 0.45


def scaled(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` with its long side at most ``side`` px (never enlarged)."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


class PictureCache:
    """Thumbnails and large views of the catalogue's images, made on first request and kept on disk."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, kind: str, image: CatalogImage) -> Path:
        # The content hash names the picture; an entry without one (written by a tool) falls back to its id.
        key = image.sha1 if len(image.sha1) == 40 and image.sha1.isalnum() else f"id{image.id}"
        return self.folder / kind / key[:2] / f"{key}.jpg"

    def get(self, kind: str, image: CatalogImage, source: Path) -> Path:
        """The cached picture of ``kind`` for ``image``, made from ``source`` if missing."""
        target = self.path(kind, image)
        if not target.is_file():
            write_bytes_atomic(target, jpeg(scaled(load_image(source), SIDES[kind])))
        return target


def crop(source: Path, box: tuple[int, int, int, int], side: int = CROP_SIDE) -> bytes:
    """JPEG of ``box`` (x0, y0, x1, y1, clipped to the image) of the image at ``source``."""
    rgb = load_image(source)
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    x0, x1 = sorted((min(max(x0, 0), w - 1), min(max(x1, 1), w)))
    y0, y1 = sorted((min(max(y0, 0), h - 1), min(max(y1, 1), h)))
    return jpeg(scaled(rgb[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)], side))


def mask_overlay(mask_path: Path, side: int = SIDES["view"]) -> bytes:
    """A transparent PNG tinting a 0/255 mask's foreground, its long side at most ``side``: laid over
    the image in the page, so showing and hiding it costs nothing."""
    mask = load_image(mask_path)[..., 0]
    mask = scaled(np.repeat(mask[..., None], 3, axis=2), side)[..., 0] > 127
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (*MASK_COLOUR[::-1], round(255 * MASK_ALPHA))  # OpenCV writes BGRA
    edge = mask ^ cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rgba[edge] = (*MASK_COLOUR[::-1], 255)
    return png(rgba)
