"""Robust image loading: anything a user points us at becomes an RGB uint8 array, or a one-line error.

Handles EXIF orientation, palette/alpha/CMYK/16-bit/float modes, decompression bombs, truncated and
non-image files. Images above :data:`DECODE_PIXELS` are decoded downscaled. Every failure raises :class:`segswap.errors.ImageError` with a message naming the file.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError
from ..grid import STRIDE

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

#: Largest image we decode (pixels). Larger files are refused before decoding (decompression bombs).
MAX_PIXELS = 120_000_000
#: Smallest side (pixels) that still holds one feature cell.
MIN_SIDE = STRIDE
#: Images above this many pixels are decoded downscaled by an integer factor to fit it (JPEG in the
#: decoder itself, so a 108-megapixel photo never exists at full size in memory). Every model input is
#: at most segswap.grid.MAX_INPUT_SIZE on its long side, so nothing a command computes is lost; masks
#: and boxes of such an image are given in the downscaled image's pixels.
DECODE_PIXELS = 24_000_000


def load_image(source: ImageLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return ``source`` as an H×W×3 uint8 RGB array, upright per its EXIF orientation.

    ``source`` may be a path, a PIL image or a NumPy array (H×W, H×W×1, H×W×3 or H×W×4; uint8, uint16,
    or float in [0, 1]). Transparent pixels are composited over white.
    """
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source, "array")
        name = "array"
    elif isinstance(source, Image.Image):
        name = "image"
        rgb = _pil_to_rgb(source, name)
    elif isinstance(source, (str, os.PathLike)):
        name = str(source)
        rgb = _pil_to_rgb(_open_path(Path(source), max_pixels), name)
    else:
        raise ImageError(f"cannot read an image from a {type(source).__name__}")
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(f"{name}: image is too small ({w}×{h} px; each side needs at least {MIN_SIDE} px)")
    if h * w > max_pixels:
        raise ImageError(f"{name}: image is too large ({w}×{h} px; limit {max_pixels:,} pixels)")
    return rgb


def _open_path(path: Path, max_pixels: int) -> Image.Image:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that; we refuse anything over the limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max_pixels
            try:
                image = Image.open(path)
                w, h = image.size
                if w * h > max_pixels:
                    raise ImageError(f"{path}: image is too large ({w}×{h} px; limit {max_pixels:,} pixels)")
                image = _decoded_within_budget(image)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or a format we cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: image is too large (limit {max_pixels:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as err:
        # PIL reports truncated or corrupt data as OSError ("image file is truncated", "broken data
        # stream") and some broken headers as SyntaxError/ValueError.
        raise ImageError(f"{path}: cannot decode image ({_first_line(err)})") from None
    return image


def _decoded_within_budget(image: Image.Image) -> Image.Image:
    """``image`` decoded, downscaled by an integer factor to at most :data:`DECODE_PIXELS` pixels; JPEG
    is downscaled by its decoder (draft), so the full-size image is never in memory."""
    w, h = image.size
    if w * h <= DECODE_PIXELS:
        image.load()
        return image
    factor = math.ceil(math.sqrt(w * h / DECODE_PIXELS))
    if image.format == "JPEG":
        image.draft(image.mode, (math.ceil(w / factor), math.ceil(h / factor)))  # 1/2, 1/4 or 1/8 at most
    image.load()
    w, h = image.size
    if w * h > DECODE_PIXELS:
        if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):  # the modes Image.reduce takes
            image = image.convert("RGBA")
        image = image.reduce(math.ceil(math.sqrt(w * h / DECODE_PIXELS)))
    return image


def _pil_to_rgb(image: Image.Image, name: str) -> np.ndarray:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not make an otherwise good image unreadable
        pass
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _array_to_rgb(np.asarray(image), name)
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        image = image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.asarray(image)


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected an H×W, H×W×3 or H×W×4 array, got shape {a.shape}")
    if a.size == 0:
        raise ImageError(f"{name}: image is empty")
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError(f"{name}: image holds NaN or infinite values")
        # Floats in [0, 1] are the usual convention; larger values are taken as 8- or 16-bit ranges.
        top = float(a.max())
        factor = 255.0 if top <= 1.0 else (1.0 / 257.0 if top > 255.0 else 1.0)
        a = np.clip(a.astype(np.float64) * factor, 0, 255).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        # 32-bit integer images (PIL mode "I") usually hold 16-bit data.
        top = int(a.max())
        a = (a.astype(np.float64) * (255.0 / 65535.0 if top > 255 else 1.0)).clip(0, 255).round().astype(np.uint8)
    else:
        raise ImageError(f"{name}: unsupported pixel type {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = (a[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return np.ascontiguousarray(a)


def resize_for_model(image: np.ndarray, size: int, stride: int = STRIDE) -> np.ndarray:
    """Resize so the long side is about ``size`` px and both sides are multiples of ``stride``.

    The aspect ratio is kept to within one stride cell; each side keeps at least two cells so that
    every image gives a feature map the model can attend over.
    """
    if size < 2 * stride:
        raise ImageError(f"model input size {size} is too small (minimum {2 * stride})")
    h, w = image.shape[:2]
    scale = size / max(h, w)
    new_h = max(2, round(h * scale / stride)) * stride
    new_w = max(2, round(w * scale / stride)) * stride
    if (new_h, new_w) == (h, w):
        return image
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (new_w, new_h), interpolation=interp)


def pixels_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 → 1×3×H×W float tensor in [0, 1]."""
    # The decoded array may be read-only (a view of PIL's buffer); torch wants a writable one.
    return torch.from_numpy(np.require(rgb, requirements="W")).permute(2, 0, 1)[None].float().div_(255.0)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
