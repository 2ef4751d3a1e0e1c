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

from ..models.outputs import similarity_score
from ..progress import ProgressCallback, report_step
from .descriptor import DescriptorIndex

#: Features of one image: a C×h×w array (float16 or float32).
FeatureLookup = Callable[[int], np.ndarray]
#: Pairs the pair model runs on at a time: the batch's attention and tail temporaries set the peak memory
#: of discovery and co-segmentation (1,000 images, shipped model: 1.26 GiB at 16, 1.02 at 8, 0.85 at 4, the
#: time within 4 %; lab/rules.md, M1).
PAIR_BATCH = 4


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


#: ``sink(position, prediction)``: takes each prediction as it is made, instead of a list of them all.
PredictionSink = Callable[[int, PairPrediction], None]


def predict_pairs(matcher, features: FeatureLookup, pairs: Sequence[tuple[int, int]], *, flip: bool = False,
                  batch_size: int | None = None, show_progress: bool = True, desc: str = "pairs",
                  on_progress: ProgressCallback | None = None, sink: PredictionSink | None = None) -> list[PairPrediction]:
    """Run ``matcher``'s pair model on every ``(a, b)`` of ``pairs``; predictions in the order given.

    ``features(i)`` gives image i's C×h×w features (a memory-mapped view is fine: only its shape is
    read until its batch runs). Pairs whose two grids have the same shapes run as batches. ``on_progress``
    hears ``(desc, pairs done, pairs)`` after each batch. With a ``sink``, each prediction goes to
    ``sink(position in pairs, prediction)`` as soon as its batch is done, nothing is kept, and the list
    returned is empty: memory then holds one batch, not every pair's masks and flows.
    """
    batch_size = batch_size or PAIR_BATCH
    groups: dict[tuple, list[int]] = {}
    for k, (a, b) in enumerate(pairs):
        groups.setdefault((features(a).shape[1:], features(b).shape[1:]), []).append(k)
    results: list[PairPrediction | None] = [None] * len(pairs)
    progress = tqdm(total=len(pairs), unit="pair", desc=desc, disable=not show_progress)
    report_step(on_progress, desc, 0, len(pairs))
    for ((ha, wa), (hb, wb)), members in groups.items():
        # Results go into arrays allocated once per group: kept small arrays allocated between the
        # model's large temporaries fragment the heap (with glibc, peak memory grew ≈40 MB per batch).
        # (With a sink nothing is kept: one batch's arrays at a time.)
        kept = None if sink is not None else _prediction_store(len(members), (ha, wa), (hb, wb))
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            store, offset = (kept, start) if kept is not None else (_prediction_store(len(chunk), (ha, wa), (hb, wb)), 0)
            rows = slice(offset, offset + len(chunk))
            fa = _stack([features(pairs[k][0]) for k in chunk])
            fb = _stack([features(pairs[k][1]) for k in chunk])
            out = matcher.predict(fa, fb, flip=flip)
            for key in ("mask_a", "mask_b", "flow_ab", "flow_ba"):
                store[key][rows] = out[key].numpy()
            store["score_ab"][rows] = similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], fa, fb).numpy()
            store["score_ba"][rows] = similarity_score(out["mask_b"], out["mask_a"], out["flow_ba"], fb, fa).numpy()
            if sink is not None:
                for j, k in enumerate(chunk):
                    sink(k, _prediction(pairs[k], store, j))
            progress.update(len(chunk))
            report_step(on_progress, desc, progress.n, len(pairs))
        if kept is not None:
            for j, k in enumerate(members):
                results[k] = _prediction(pairs[k], kept, j)
    progress.close()
    return [] if sink is not None else results


def _prediction_store(n: int, grid_a: tuple[int, int], grid_b: tuple[int, int]) -> dict[str, np.ndarray]:
    (ha, wa), (hb, wb) = grid_a, grid_b
    return {"mask_a": np.empty((n, ha, wa), np.float32), "mask_b": np.empty((n, hb, wb), np.float32),
            "flow_ab": np.empty((n, ha, wa, 2), np.float32), "flow_ba": np.empty((n, hb, wb, 2), np.float32),
            "score_ab": np.empty(n, np.float32), "score_ba": np.empty(n, np.float32)}


def _prediction(pair: tuple[int, int], store: dict[str, np.ndarray], j: int) -> PairPrediction:
    return PairPrediction(pair[0], pair[1], store["mask_a"][j], store["mask_b"][j], store["flow_ab"][j], store["flow_ba"][j],
                          float(store["score_ab"][j]), float(store["score_ba"][j]))


def pair_chunks(grid_of: Callable[[int], tuple], pairs: Sequence[tuple[int, int]], pairs_per_chunk: int,
                batch_size: int | None = None) -> list[list[int]]:
    """Split ``pairs`` (their indices) into chunks that :func:`predict_pairs` runs in exactly the batches
    it runs the whole list in: each chunk lies in one group of equal grid shapes (``grid_of(i)``: image
    i's feature shape) and starts at a multiple of ``batch_size`` in it. The same batches give the same
    floats, so a cluster's tasks reproduce a single process's predictions."""
    batch_size = batch_size or PAIR_BATCH
    per_chunk = max(1, pairs_per_chunk // batch_size) * batch_size
    groups: dict[tuple, list[int]] = {}
    for k, (a, b) in enumerate(pairs):
        groups.setdefault((tuple(grid_of(a)), tuple(grid_of(b))), []).append(k)
    return [members[start:start + per_chunk] for members in groups.values() for start in range(0, len(members), per_chunk)]


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
