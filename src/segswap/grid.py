"""The feature grid: every backbone gives one cell per 16×16 pixels of its input.

Model inputs are resized so both sides are multiples of :data:`STRIDE`; a box or point on the cell
grid maps back to the pixels of the image the grid covers. Light (no numerical imports): the command
line checks ``--size`` with :func:`check_input_size` before it loads a model.
"""

from __future__ import annotations

from .errors import SegswapError

#: Pixels per feature cell (the backbones' stride), along each side.
STRIDE = 16
#: Largest model input long side (px). Memory grows with the square of the token count: at 1280 px a
#: pair's correlation is 6400² cells (164 MB in float32) per attention map; beyond, a laptop swaps.
MAX_INPUT_SIZE = 1280
#: Input long side (px) wherever no trained weights fix one: the training-free matcher, a new
#: collection index, coarse alignment.
DEFAULT_SIZE = 480


def check_input_size(size: int | None, minimum: int = 32, option: str = "--size") -> int | None:
    """``size`` if it is a valid model input long side (or None); else a one-line :class:`SegswapError`."""
    if size is not None and (size % STRIDE or not minimum <= size <= MAX_INPUT_SIZE):
        raise SegswapError(f"{option} must be a multiple of {STRIDE} between {minimum} and {MAX_INPUT_SIZE}, got {size}")
    return size


def cells_to_pixels(box: tuple[int, int, int, int], grid: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box of feature cells (x0, y0, x1, y1, end exclusive) on a ``grid`` (h, w) → the same box in the
    pixels of the image, of ``size`` (w, h), that the grid covers."""
    sx, sy = size[0] / grid[1], size[1] / grid[0]
    x0, y0, x1, y1 = box
    return int(x0 * sx), int(y0 * sy), min(size[0], round(x1 * sx)), min(size[1], round(y1 * sy))


def box_iou(a, b) -> float:
    """Intersection over union of two pixel boxes (x0, y0, x1, y1, end exclusive); 0 when both are empty."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_overlap(a, b) -> float:
    """The share of the smaller of two pixel boxes that lies inside the other; 0 when either is empty."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return inter / smaller if smaller > 0 else 0.0
