"""Size limits: the largest model input, and the pixel budget an image is decoded within.

Light (no numerical imports), so the command line checks ``--size`` before loading a model.
"""

from __future__ import annotations

from ..errors import SegswapError

#: Largest model input long side (px). Memory grows with the square of the token count: at 1280 px a
#: pair's correlation is 6400² cells (164 MB in float32) per attention map; beyond, a laptop swaps.
MAX_INPUT_SIZE = 1280
#: Images above this many pixels are decoded downscaled by an integer factor to fit it (JPEG in the
#: decoder itself, so a 108-megapixel photo never exists at full size in memory). Every model input is
#: at most MAX_INPUT_SIZE on its long side, so nothing a command computes is lost; masks and boxes of
#: such an image are given in the downscaled image's pixels.
DECODE_PIXELS = 24_000_000


def check_input_size(size: int | None, minimum: int = 32, option: str = "--size") -> int | None:
    """``size`` if it is a valid model input long side (or None); else a one-line :class:`SegswapError`."""
    if size is not None and (size % 16 or not minimum <= size <= MAX_INPUT_SIZE):
        raise SegswapError(f"{option} must be a multiple of 16 between {minimum} and {MAX_INPUT_SIZE}, got {size}")
    return size
