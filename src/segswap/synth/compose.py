"""Building one image: a background crop, objects warped onto it and blended, then the frame warp.

Blending works on the object's bounding box only (Poisson on the whole canvas costs ~10× more).
``cv2.seamlessClone`` leaves the outermost ring of its mask untouched (that ring is the boundary
condition), so the object's label is the mask eroded by one pixel in every blend mode, copy included.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import FrameWarp

BLEND_FLAGS = {"normal": cv2.NORMAL_CLONE, "mixed": cv2.MIXED_CLONE}
BLEND_MODES = ("normal", "mixed", "copy")
#: With --blend poisson, the share of objects blended with MIXED_CLONE (the rest NORMAL_CLONE).
MIXED_SHARE = 0.25
#: Normal clones of objects larger than this (px, long side of the box) are solved at half size.
FULL_RES_POISSON = 160
#: Background crops: a square of this fraction of the photo's short side, anywhere in the photo.
CROP_RANGE = (0.5, 1.0)
_RING = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class BackgroundCrop:
    x: float
    y: float
    side: float
    flip: bool

    def as_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "side": self.side, "flip": self.flip}


def sample_crop(rng: np.random.Generator, shape: tuple[int, int]) -> BackgroundCrop:
    """A square crop (in the photo's own pixels) and a horizontal flip."""
    h, w = shape
    side = float(rng.uniform(*CROP_RANGE) * min(h, w))
    u, v = rng.random(2)
    flip = bool(rng.random() < 0.5)
    return BackgroundCrop(float(u * (w - side)), float(v * (h - side)), side, flip)


def render_background(photo: np.ndarray, scale: float, crop: BackgroundCrop, canvas: int) -> np.ndarray:
    """Canvas-sized background from ``photo`` (already downscaled by ``scale`` from the original)."""
    s = crop.side * scale
    f = canvas / s
    m = np.array([[f, 0, -crop.x * scale * f], [0, f, -crop.y * scale * f]])
    out = cv2.warpAffine(photo, m, (canvas, canvas), flags=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    return out[:, ::-1].copy() if crop.flip else out


def sample_blend(rng: np.random.Generator, setting: str) -> str:
    """Blend mode of one object for a ``--blend`` setting (``poisson`` mixes normal and mixed)."""
    draw = rng.random()
    if setting == "poisson":
        return "mixed" if draw < MIXED_SHARE else "normal"
    return setting


@dataclass
class WarpedObject:
    """An object warped into a canvas: the patch and mask of its box, placed at ``(x0, y0)``."""

    x0: int
    y0: int
    patch: np.ndarray
    region: np.ndarray  # uint8 0/255, the pasted area (zero on the box's outer ring)
    shown: np.ndarray  # bool, the pixels the object really replaces (region eroded by one pixel)


def warp_object(source: np.ndarray, mask: np.ndarray, matrix: np.ndarray, canvas_side: int) -> WarpedObject | None:
    """Warp an object (``matrix``: source → canvas) into its box on the canvas; None if off-canvas."""
    h, w = mask.shape
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64) @ matrix[:, :2].T + matrix[:, 2]
    # Two spare pixels around the object: seamlessClone needs background on its boundary ring.
    x0 = max(0, int(np.floor(corners[:, 0].min())) - 2)
    y0 = max(0, int(np.floor(corners[:, 1].min())) - 2)
    x1 = min(canvas_side, int(np.ceil(corners[:, 0].max())) + 3)
    y1 = min(canvas_side, int(np.ceil(corners[:, 1].max())) + 3)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    local = matrix.copy()
    local[:, 2] -= [x0, y0]
    size = (x1 - x0, y1 - y0)
    patch = cv2.warpAffine(source, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    region = cv2.warpAffine(mask, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    region = np.where(region >= 128, 255, 0).astype(np.uint8)
    region[0, :] = region[-1, :] = region[:, 0] = region[:, -1] = 0
    shown = cv2.erode(region, _RING) > 0
    if not shown.any():
        return None
    return WarpedObject(x0, y0, patch, region, shown)


def mark(labels: np.ndarray, label: int, obj: WarpedObject) -> None:
    """Record that ``label`` now shows (on top of earlier objects) where ``obj`` is pasted."""
    h, w = obj.shown.shape
    labels[obj.y0 : obj.y0 + h, obj.x0 : obj.x0 + w][obj.shown] = label


def blend(canvas: np.ndarray, obj: WarpedObject, mode: str) -> None:
    """Paste ``obj`` into ``canvas`` in place: Poisson (``normal``/``mixed``) or plain ``copy``."""
    h, w = obj.shown.shape
    roi = canvas[obj.y0 : obj.y0 + h, obj.x0 : obj.x0 + w]
    if mode == "copy":
        roi[obj.shown] = obj.patch[obj.shown]
    elif mode == "normal" and max(h, w) > FULL_RES_POISSON:
        _normal_clone_at_half(roi, obj)
    else:
        roi[:] = _clone(obj.patch, roi, obj.region, BLEND_FLAGS[mode])


def _clone(patch: np.ndarray, dst: np.ndarray, region: np.ndarray, flag: int) -> np.ndarray:
    bx, by, bw, bh = cv2.boundingRect(region)
    # seamlessClone writes into its mask argument in OpenCV 5, hence the copy; this centre keeps the
    # patch exactly where it already is (checked in the tests).
    return cv2.seamlessClone(patch, dst, region.copy(), (bx + bw // 2, by + bh // 2), flag)


def _normal_clone_at_half(roi: np.ndarray, obj: WarpedObject) -> None:
    """NORMAL_CLONE of a big object: solve at half size, add the (smooth) correction at full size.

    A normal clone is the patch plus a membrane that takes the patch's colours to the background's at
    the boundary; the membrane is smooth, so solving it at half size changes the result little (mean
    ≈ 5 grey levels on a 400-px object) and costs a third.
    """
    h, w = obj.shown.shape
    half = (w // 2, h // 2)
    patch = cv2.resize(obj.patch, half, interpolation=cv2.INTER_AREA)
    dst = cv2.resize(roi, half, interpolation=cv2.INTER_AREA)
    region = cv2.resize(obj.region, half, interpolation=cv2.INTER_NEAREST)
    region[0, :] = region[-1, :] = region[:, 0] = region[:, -1] = 0
    if not region.any():
        roi[:] = _clone(obj.patch, roi, obj.region, cv2.NORMAL_CLONE)
        return
    correction = _clone(patch, dst, region, cv2.NORMAL_CLONE).astype(np.float32) - patch
    correction = cv2.resize(correction, (w, h), interpolation=cv2.INTER_LINEAR)
    blended = np.clip(obj.patch + correction, 0, 255).astype(np.uint8)
    roi[obj.shown] = blended[obj.shown]


def finish(canvas: np.ndarray, warp: FrameWarp) -> np.ndarray:
    """The final frame image: the canvas seen through ``warp``."""
    m, s = warp.margin, warp.size
    dense = warp.dense()
    if dense is None:
        return canvas[m : m + s, m : m + s].copy()
    return cv2.remap(canvas, dense, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
