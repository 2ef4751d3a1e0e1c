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


#: How `segswap discover` finds patterns; the first is the default. By rule D1 (lab/rules.md) the regions
#: design, better on the development collection, had to stay within the spectral design's time on 1,000
#: images to become the default; it took 2.0× (docs/results.md, "Discovery on a mixed collection").
DISCOVERY_DESIGNS = ("spectral", "regions")


def check_design(design: str, clusters: int | None = None, min_evidence: float = 1.0) -> None:
    """Refuse an unknown design, or an option of the other design, before any model loads."""
    if design not in DISCOVERY_DESIGNS:
        raise SegswapError(f"--design must be one of {', '.join(DISCOVERY_DESIGNS)}, not {design!r}")
    if design == "regions" and clusters is not None:
        raise SegswapError("--clusters is the spectral design's; the regions design finds as many patterns as the "
                           "verified edges make")
    if not min_evidence > 0:
        raise SegswapError(f"--min-evidence must be above 0, got {min_evidence}")
    if design == "spectral" and min_evidence != 1.0:
        raise SegswapError("--min-evidence is the regions design's")
