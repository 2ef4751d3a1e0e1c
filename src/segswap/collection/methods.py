"""The co-segmentation methods of `segswap cosegment`, named here without heavy imports so that the
command can check ``--method`` before any model loads."""

from __future__ import annotations

from ..errors import SegswapError

#: How masks are made; the first is the default.
METHODS = {
    "fusion": "objectness prior and SegSwap potential, per-pixel mean, Otsu level",
    "segswap": "SegSwap potential refined by GrabCut (the paper's co-segmentation)",
    "saliency": "objectness prior alone, Otsu level (no second image; no pairs run)",
}
DEFAULT_METHOD = "fusion"


def check_method(method: str) -> None:
    if method not in METHODS:
        raise SegswapError(f"unknown co-segmentation method {method!r}; choose from {', '.join(METHODS)}")
