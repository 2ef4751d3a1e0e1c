"""The co-segmentation methods of `segswap cosegment` and the re-rankers of `segswap search`, named
here without heavy imports so that the commands can check ``--method`` and ``--rerank`` before any
model loads."""

from __future__ import annotations

from ..errors import SegswapError

#: How masks are made; the first is the default.
METHODS = {
    "fusion": "objectness prior and SegSwap potential, per-pixel mean, Otsu level",
    "segswap": "SegSwap potential refined by GrabCut (the paper's co-segmentation)",
    "saliency": "objectness prior alone, Otsu level (no second image; no pairs run)",
    "evidence": "per image, the segswap method's mask where keypoints find it repeated rigidly in its partners "
                "(copies), the objectness prior where they do not (a category's instances), weighted by the share "
                "of partners they confirm; Otsu level",
}
DEFAULT_METHOD = "fusion"
#: How search re-ranks its shortlist: by the pair model's Eq. 3 score, or by ArtMiner's verification.
RERANKERS = ("model", "ransac")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise SegswapError(f"unknown co-segmentation method {method!r}; choose from {', '.join(METHODS)}")


def check_reranker(rerank: str) -> None:
    if rerank not in RERANKERS:
        raise SegswapError(f"--rerank must be one of {', '.join(RERANKERS)}, not {rerank!r}")
