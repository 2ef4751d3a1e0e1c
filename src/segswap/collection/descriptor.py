"""Shortlisting descriptors: pooled backbone features of the whole image and of regions of it.

A detail occupies a small part of the images it appears in, so one whole-image vector misses it: each
image also gets the vectors of overlapping windows at a few scales (as R-MAC does), and an image's
similarity to a query is its best window's. Pooling is a plain mean of the L2-normalised cell features,
L2-normalised again: GeM needs non-negative features, and the stride-16 EfficientNet blocks are not.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

#: Window sides as fractions of the image's sides; windows overlap by half a window.
REGION_SCALES = (1.0, 1 / 2, 1 / 4)


def region_boxes(grid_h: int, grid_w: int) -> list[tuple[int, int, int, int]]:
    """The windows, in cells ``(y0, x0, y1, x1)`` (end exclusive), whole grid first, duplicates removed."""
    boxes: list[tuple[int, int, int, int]] = []
    for scale in REGION_SCALES:
        wh, ww = max(1, round(scale * grid_h)), max(1, round(scale * grid_w))
        steps = 2 * math.ceil(1 / scale) - 1
        for y0 in np.linspace(0, grid_h - wh, steps).round().astype(int):
            for x0 in np.linspace(0, grid_w - ww, steps).round().astype(int):
                box = (int(y0), int(x0), int(y0) + wh, int(x0) + ww)
                if box not in boxes:
                    boxes.append(box)
    return boxes


def pooled(feats: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Mean of the C×h×w features over the cells of ``box`` (all cells if None), L2-normalised."""
    if box is not None:
        y0, x0, y1, x1 = box
        feats = feats[:, y0:y1, x0:x1]
    v = feats.reshape(feats.shape[0], -1).mean(axis=1, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def regional_descriptors(feats: np.ndarray) -> np.ndarray:
    """R×C float32: the pooled descriptor of each window of :func:`region_boxes`, whole image first."""
    feats = np.asarray(feats, dtype=np.float32)
    # A summed-area table makes every window's mean O(C) whatever its size.
    table = np.zeros((feats.shape[0], feats.shape[1] + 1, feats.shape[2] + 1), np.float64)
    table[:, 1:, 1:] = feats.cumsum(1).cumsum(2)
    rows = []
    for y0, x0, y1, x1 in region_boxes(*feats.shape[1:]):
        total = table[:, y1, x1] - table[:, y0, x1] - table[:, y1, x0] + table[:, y0, x0]
        rows.append(total / max(float(np.linalg.norm(total)), 1e-12))
    return np.stack(rows).astype(np.float32)


class DescriptorIndex:
    """Images' regional descriptors in a FAISS inner-product index; an image's score for a query is
    its best window's cosine. Vector ids are ``image id × IDS_PER_IMAGE + window``."""

    IDS_PER_IMAGE = 128  # more than any image has windows

    def __init__(self, channels: int, index=None):
        self.channels = channels
        self.faiss = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(channels))

    def __len__(self) -> int:
        return self.faiss.ntotal

    def add(self, image_id: int, descriptors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(descriptors, dtype=np.float32)
        self.faiss.add_with_ids(vectors, image_id * self.IDS_PER_IMAGE + np.arange(len(vectors), dtype=np.int64))

    def search(self, queries: np.ndarray, n: int, exclude=None) -> list[list[tuple[int, float]]]:
        """For each query (Q×C, L2-normalised), the ``n`` best images as ``[(image id, cosine), ...]``,
        best first. ``exclude``: per query, an image id to leave out (e.g. the query's own), or None."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        results: list[list[tuple[int, float]]] = [[] for _ in queries]
        total = self.faiss.ntotal
        if total == 0 or n <= 0:
            return results
        # Ask for a few windows per wanted image; ask again for more when one image's windows crowd
        # the answer.
        k = min(total, (n + 1) * 8)
        pending = list(range(len(queries)))
        while pending:
            scores, ids = self.faiss.search(queries[pending], k)
            retry = []
            for row, q in enumerate(pending):
                skip = None if exclude is None else exclude[q]
                best: dict[int, float] = {}
                for vector_id, score in zip(ids[row], scores[row]):
                    image_id = int(vector_id) // self.IDS_PER_IMAGE
                    if vector_id >= 0 and image_id != skip and image_id not in best:
                        best[image_id] = float(score)
                if len(best) >= n or k >= total:
                    results[q] = list(best.items())[:n]
                else:
                    retry.append(q)
            pending, k = retry, min(total, k * 4)
        return results

    def save(self, path) -> None:
        faiss.write_index(self.faiss, str(path))

    @classmethod
    def load(cls, path, channels: int) -> "DescriptorIndex":
        return cls(channels, faiss.read_index(str(path)))
