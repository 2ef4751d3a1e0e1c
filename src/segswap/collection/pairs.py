"""Running the pair model over many image pairs of a collection, from cached features.

The backbone has already run (an index, or one pass over a folder); only the pair model runs per pair,
in batches of pairs whose two feature grids have the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..pair import similarity_score
from .descriptor import DescriptorIndex

#: Features of one image: a C×h×w array (float16 or float32).
FeatureLookup = Callable[[int], np.ndarray]


@dataclass
class PairPrediction:
    """The pair model's output for images ``a`` and ``b`` on their token grids."""

    a: int
    b: int
    mask_a: np.ndarray  # h_a×w_a float32
    mask_b: np.ndarray  # h_b×w_b
    flow_ab: np.ndarray  # h_a×w_a×2, (x, y) in [0, 1] of each a-cell's match in b
    flow_ba: np.ndarray  # h_b×w_b×2
    score_ab: float  # paper Eq. 3 with a as the query
    score_ba: float

    def flow_from(self, image: int) -> np.ndarray:
        """The flow that starts in ``image`` (one of a, b)."""
        return self.flow_ab if image == self.a else self.flow_ba

    def mask_of(self, image: int) -> np.ndarray:
        return self.mask_a if image == self.a else self.mask_b


def predict_pairs(matcher, features: FeatureLookup, pairs: Sequence[tuple[int, int]], *, flip: bool = False,
                  batch_size: int = 16, show_progress: bool = True, desc: str = "pairs") -> list[PairPrediction]:
    """Run ``matcher``'s pair model on every ``(a, b)`` of ``pairs``, in the order given.

    ``features(i)`` gives image i's C×h×w features (a memory-mapped view is fine: only its shape is
    read until its batch runs).
    """
    grids = {i: features(i).shape[1:] for pair in pairs for i in pair}
    shapes = [(grids[a], grids[b]) for a, b in pairs]
    order = sorted(range(len(pairs)), key=lambda k: shapes[k])
    results: list[PairPrediction | None] = [None] * len(pairs)
    progress = tqdm(total=len(pairs), unit="pair", desc=desc, disable=not show_progress)
    start = 0
    while start < len(order):
        chunk = [order[start]]
        while (start + len(chunk) < len(order) and len(chunk) < batch_size
               and shapes[order[start + len(chunk)]] == shapes[order[start]]):
            chunk.append(order[start + len(chunk)])
        start += len(chunk)
        fa = _stack([features(pairs[k][0]) for k in chunk])
        fb = _stack([features(pairs[k][1]) for k in chunk])
        out = matcher.predict(fa, fb, flip=flip)
        scores_ab = similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], fa, fb)
        scores_ba = similarity_score(out["mask_b"], out["mask_a"], out["flow_ba"], fb, fa)
        for j, k in enumerate(chunk):
            results[k] = PairPrediction(pairs[k][0], pairs[k][1], out["mask_a"][j].numpy(), out["mask_b"][j].numpy(),
                                        out["flow_ab"][j].numpy(), out["flow_ba"][j].numpy(),
                                        float(scores_ab[j]), float(scores_ba[j]))
        progress.update(len(chunk))
    progress.close()
    return results


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays).astype(np.float32, copy=False))


def neighbour_pairs(descriptors: DescriptorIndex, regional: Sequence[np.ndarray], ids: Sequence[int], k: int) -> list[tuple[int, int]]:
    """Each image's ``k`` nearest other images by descriptor (best window against window, so a shared
    detail counts), as unordered pairs ``(i, j)``, ``i < j``, without repeats.

    ``regional[n]``: the R×C regional descriptors of image ``ids[n]``.
    """
    found = descriptors.search(regional, k, exclude=list(ids))
    pairs = {(min(i, j), max(i, j)) for i, hits in zip(ids, found) for j, _ in hits}
    return sorted(pairs)
