"""The correspondence graph of SegSwap (paper Sec. 5.1, Eq. 4) and its leading eigenvectors.

Nodes are confident correspondences: for a pair (a, b), the cells of the image with more cells whose
predicted mask exceeds ``NODE_THRESHOLD``, each linked to the cell its flow lands in — except links
between two border cells: a stride-16 backbone's border features carry its zero padding's signature, so
border cells of unrelated images match each other, consistently across every pair and triple; on MSRC
groups without a strong repeat they took all of the leading eigenvector. Edges weigh how
consistently two correspondences agree, always through image positions in token units (σ is in cells):

* 2-cycle, two nodes of the same pair:  m_i m_j exp(-(|x_i^a - x_j^a| + |x_i^b - x_j^b|) / 2σ);
* 3-cycle, nodes of pairs (s, t_i) and (s, t_j) sharing one image s, when the pair (t_i, t_j) was also
  run (Eq. 4):  ½ m_i m_j exp(-|x_i^s - x_j^s| / σ) (exp(-|x_i^t - C^{t_j→t_i}(x_j^t)| / σ)
  + exp(-|x_j^t - C^{t_i→t_j}(x_i^t)| / σ)).

Weights under ``MIN_EDGE`` are dropped, so the matrix is sparse; it is assembled block by block (one
block per pair, or per two pairs sharing an image), never as a dense node × node array, over every pair
or over a part of them (:func:`part_graph`: discovery splits a graph too large for memory). The
predictions can be taken one at a time (:class:`StreamedPairs`): the graph reads only their nodes and
flows.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .predictions import PairPrediction

#: A cell becomes a node when its predicted mask is above this (the authors' value).
NODE_THRESHOLD = 0.85
#: Edges lighter than this are dropped (the authors' value).
MIN_EDGE = 0.01
#: Distance scale of Eq. 4, in cells. The authors chose 0.8–5 per dataset; on our synthetic planted
#: groups (4 × 8 images) co-segmentation J fell as σ grew (0.77 at 0.8, 0.73 at 1.2, 0.62 at 2,
#: 0.56 at 5), so we take the low end of their range (0.5 gave 0.83, but exact pasted copies favour
#: a tight σ more than real repeats would).
SIGMA = 0.8
#: Rows the streamed node buffers start with (a pair's nodes are ≈35 rows); they double as needed.
NODE_CHUNK = 1 << 16


@dataclass
class Nodes:
    """Correspondences kept as graph nodes, one row each, ordered by pair. Compact types: at 100,000
    images discovery holds ≈12.5 M of them (24 bytes each)."""

    pair: np.ndarray  # int32 index into the graph's pair list
    image_a: np.ndarray  # int32, the pair's images
    image_b: np.ndarray
    cell_a: np.ndarray  # n×2 int16 (x, y) cell in image a
    cell_b: np.ndarray  # n×2 int16 (x, y) cell in image b
    mask: np.ndarray  # float32 predicted mask value (confidence)

    def __len__(self) -> int:
        return len(self.pair)

    def cells_in(self, image: int, rows: np.ndarray) -> np.ndarray:
        """Cells of the given node rows in ``image`` (each row's pair must contain it)."""
        return np.where((self.image_a[rows] == image)[:, None], self.cell_a[rows], self.cell_b[rows])

    def subset(self, rows: np.ndarray) -> "Nodes":
        return Nodes(self.pair[rows], self.image_a[rows], self.image_b[rows], self.cell_a[rows], self.cell_b[rows],
                     self.mask[rows])


def cell_sums(nodes: Nodes, values: np.ndarray, grids: dict[int, tuple[int, int]]) -> dict[int, np.ndarray]:
    """Per image of ``grids`` (image → token grid (h, w)): the sum of ``values`` (one per node) over the
    nodes touching each cell — a node touches one cell in each of its two images."""
    sums = {image: np.zeros(grid, np.float32) for image, grid in grids.items()}
    for image_of, cells in ((nodes.image_a, nodes.cell_a), (nodes.image_b, nodes.cell_b)):
        for image in np.unique(image_of):
            rows = image_of == image
            np.add.at(sums[int(image)], (cells[rows, 1], cells[rows, 0]), values[rows])
    return sums


def pair_nodes(pred: PairPrediction, threshold: float = NODE_THRESHOLD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The confident correspondences of one prediction: cells in a, cells in b (n×2 int16), confidences."""
    on_a, on_b = pred.mask_a > threshold, pred.mask_b > threshold
    if not on_a.any() and not on_b.any():
        return np.zeros((0, 2), np.int16), np.zeros((0, 2), np.int16), np.zeros(0, np.float32)
    if on_a.sum() >= on_b.sum():
        cells_a, cells_b, mask = _confident_matches(pred.mask_a, on_a, pred.flow_ab, pred.mask_b.shape)
    else:
        cells_b, cells_a, mask = _confident_matches(pred.mask_b, on_b, pred.flow_ba, pred.mask_a.shape)
    inner = ~(_on_border(cells_a, pred.mask_a.shape) & _on_border(cells_b, pred.mask_b.shape))
    cells_a, cells_b, mask = cells_a[inner], cells_b[inner], mask[inner]
    # Several cells may land on the same target cell: keep each distinct correspondence once, at
    # its highest confidence.
    keys = np.concatenate([cells_a, cells_b], axis=1)
    order = np.argsort(-mask, kind="stable")
    _, first = np.unique(keys[order], axis=0, return_index=True)
    keep = np.sort(order[first])
    return cells_a[keep].astype(np.int16), cells_b[keep].astype(np.int16), mask[keep]


def graph_nodes(predictions: Sequence[PairPrediction], threshold: float = NODE_THRESHOLD) -> Nodes:
    """The confident correspondences of each prediction (a node list ordered by pair)."""
    found = [pair_nodes(pred, threshold) for pred in predictions]
    return _node_list([np.full(len(mask), p, np.int32) for p, (_, _, mask) in enumerate(found)],
                      [cells_a for cells_a, _, _ in found], [cells_b for _, cells_b, _ in found],
                      [mask for _, _, mask in found], [(pred.a, pred.b) for pred in predictions])


def _node_list(pair: list[np.ndarray], cells_a: list[np.ndarray], cells_b: list[np.ndarray], mask: list[np.ndarray],
               pair_images: Sequence[tuple[int, int]]) -> Nodes:
    """Nodes from per-pair (or per-batch) columns, ordered by pair; nodes of one pair keep their order."""
    if not pair:
        return _node_list([np.zeros(0, np.int32)], [np.zeros((0, 2), np.int16)], [np.zeros((0, 2), np.int16)],
                          [np.zeros(0, np.float32)], pair_images)
    pair, cells_a, cells_b, mask = (np.concatenate(c) for c in (pair, cells_a, cells_b, mask))
    order = np.argsort(pair, kind="stable")
    pair = pair[order]
    images = np.asarray(pair_images, np.int32).reshape(-1, 2)
    return Nodes(pair, images[pair, 0], images[pair, 1], cells_a[order], cells_b[order], mask[order])


def _confident_matches(mask: np.ndarray, on: np.ndarray, flow: np.ndarray, other_grid: tuple[int, int]):
    ys, xs = np.nonzero(on)
    h, w = other_grid
    tx = np.clip((flow[ys, xs, 0] * w).astype(np.int64), 0, w - 1)
    ty = np.clip((flow[ys, xs, 1] * h).astype(np.int64), 0, h - 1)
    return np.stack([xs, ys], 1).astype(np.int64), np.stack([tx, ty], 1), mask[ys, xs].astype(np.float32)


def _on_border(cells: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    h, w = grid
    return (cells[:, 0] == 0) | (cells[:, 1] == 0) | (cells[:, 0] == w - 1) | (cells[:, 1] == h - 1)


#: ``flow(s, t)``: the flow of the predicted pair {s, t} that starts in image s (h_s×w_s×2, (x, y) in
#: [0, 1] of each s-cell's match in t), or None if that pair was not run.
FlowLookup = Callable[[int, int], "np.ndarray | None"]


def prediction_flows(predictions: Sequence[PairPrediction]) -> FlowLookup:
    """The flows of predictions held in memory."""
    predicted = {(pred.a, pred.b): pred for pred in predictions}
    predicted.update({(pred.b, pred.a): pred for pred in predictions})

    def flow(source: int, target: int) -> np.ndarray | None:
        pred = predicted.get((source, target))
        return None if pred is None else pred.flow_from(source)

    return flow


class StreamedPairs:
    """What the graph reads of the pair predictions, taken from each as it is made (a
    :data:`~segswap.collection.predictions.PredictionSink`): its nodes, and its two flows for the 3-cycles,
    written to an unnamed temporary file in ``folder`` and read back as needed. No prediction is kept:
    at 100,000 images their masks and flows alone are ≈2.6 GB, the nodes ≈0.3 GB."""

    def __init__(self, pair_images: Sequence[tuple[int, int]], folder: Path | None = None,
                 threshold: float = NODE_THRESHOLD):
        self.pair_images = [tuple(map(int, p)) for p in pair_images]
        self.threshold = threshold
        self._position = {_pair_key(a, b): k for k, (a, b) in enumerate(self.pair_images)}
        self._file = tempfile.TemporaryFile(dir=folder)
        self._offset = np.full(len(self.pair_images), -1, np.int64)  # of the pair's flow_ab, then flow_ba
        self._grids = np.zeros((len(self.pair_images), 2, 2), np.int32)  # (h, w) of a, of b
        self._written = 0
        # The nodes so far, in one buffer per column that doubles as needed: thousands of small per-pair
        # arrays kept between the model's large temporaries fragmented glibc's heap (the process grew
        # ≈1.5 MB a pair: 7.6 GiB for 1,000 images in benchmarks/discover_speed.py).
        self._columns = {"pair": np.empty(NODE_CHUNK, np.int32), "cells_a": np.empty((NODE_CHUNK, 2), np.int16),
                         "cells_b": np.empty((NODE_CHUNK, 2), np.int16), "mask": np.empty(NODE_CHUNK, np.float32)}
        self._count = 0
        self._nodes: Nodes | None = None

    def __call__(self, position: int, pred: PairPrediction) -> None:
        cells_a, cells_b, mask = pair_nodes(pred, self.threshold)
        end = self._count + len(mask)
        if end > len(self._columns["pair"]):
            capacity = max(end, 2 * len(self._columns["pair"]))
            for name, column in self._columns.items():
                grown = np.empty((capacity, *column.shape[1:]), column.dtype)
                grown[:self._count] = column[:self._count]
                self._columns[name] = grown
        for name, values in (("pair", position), ("cells_a", cells_a), ("cells_b", cells_b), ("mask", mask)):
            self._columns[name][self._count:end] = values
        self._count = end
        self._offset[position] = self._written
        self._grids[position] = (pred.mask_a.shape, pred.mask_b.shape)
        for flow in (pred.flow_ab, pred.flow_ba):
            data = np.ascontiguousarray(flow, np.float32).tobytes()
            self._file.write(data)
            self._written += len(data)

    def ran(self, a: int, b: int) -> bool:
        """Whether the pair {a, b} was run (and taken)."""
        k = self._position.get(_pair_key(a, b))
        return k is not None and self._offset[k] >= 0

    def nodes(self) -> Nodes:
        """The node list, ordered by pair (once every pair has been taken)."""
        if self._nodes is None:
            self._file.flush()
            self._nodes = _node_list(*([self._columns[name][:self._count]] for name in ("pair", "cells_a", "cells_b", "mask")),
                                     self.pair_images)
            self._columns = {name: np.empty((0, *column.shape[1:]), column.dtype) for name, column in self._columns.items()}
        return self._nodes

    def flow(self, source: int, target: int) -> np.ndarray | None:
        """A :data:`FlowLookup`, read from the file."""
        if not self.ran(source, target):
            return None
        k = self._position[_pair_key(source, target)]
        (ha, wa), (hb, wb) = self._grids[k]
        offset = int(self._offset[k])
        if source == self.pair_images[k][1]:
            offset, (h, w) = offset + ha * wa * 2 * 4, (hb, wb)
        else:
            h, w = ha, wa
        return np.frombuffer(os.pread(self._file.fileno(), h * w * 2 * 4, offset), np.float32).reshape(h, w, 2)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "StreamedPairs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pair_key(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


@dataclass
class PartGraph:
    """The correspondence graph over the nodes of some pairs (a part of the whole graph)."""

    matrix: scipy.sparse.csr_matrix  # over ``rows``, in their order
    rows: np.ndarray  # the part's node rows in the whole node list, ascending
    dropped: int  # entries (both directions) of edges between a node of the part and one outside it


def correspondence_graph(nodes: Nodes, pair_images: Sequence[tuple[int, int]], flow: FlowLookup,
                         sigma: float = SIGMA) -> scipy.sparse.csr_matrix:
    """The symmetric sparse adjacency matrix over ``nodes`` (made from the pairs ``pair_images``);
    3-cycle edges read the flows of any pair run, through ``flow``."""
    return part_graph(nodes, pair_images, flow, np.arange(len(pair_images)), sigma).matrix


def part_graph(nodes: Nodes, pair_images: Sequence[tuple[int, int]], flow: FlowLookup, part: np.ndarray,
               sigma: float = SIGMA) -> PartGraph:
    """The graph over the nodes of the pairs ``part`` (ascending pair positions), with the edges between
    them; edges to nodes of other pairs are counted, not kept. With every pair it is the whole graph."""
    members = _rows_by_pair(nodes, len(pair_images))
    in_part = np.zeros(len(pair_images), bool)
    in_part[part] = True
    sizes = np.array([len(members[p]) for p in part], np.int64)
    start = np.zeros(len(pair_images), np.int64)  # a part pair's first row in the part's matrix
    start[part] = np.cumsum(sizes) - sizes
    n = int(sizes.sum())
    rows, cols, vals = [], [], []
    dropped = 0

    def local(p: int) -> np.ndarray:
        return np.arange(start[p], start[p] + len(members[p]), dtype=np.int32)

    def keep(block: np.ndarray, first: np.ndarray, second: np.ndarray, symmetric_copy: bool) -> None:
        i, j = np.nonzero(block >= MIN_EDGE)
        rows.append(first[i]), cols.append(second[j]), vals.append(block[i, j])
        if symmetric_copy:
            rows.append(second[j]), cols.append(first[i]), vals.append(block[i, j])

    for p in part:  # 2-cycle
        idx = members[p]
        if len(idx) < 2:
            continue
        d = _distances(nodes.cell_a[idx], nodes.cell_a[idx]) + _distances(nodes.cell_b[idx], nodes.cell_b[idx])
        block = np.exp(-d / (2 * sigma)) * np.outer(nodes.mask[idx], nodes.mask[idx])
        np.fill_diagonal(block, 0.0)
        keep(block, local(p), local(p), symmetric_copy=False)

    pairs_of_image = _pairs_of_image(members, pair_images)
    # Shared images in the order the part's pairs meet them (with every pair: the whole graph's order).
    images = dict.fromkeys(image for p in part if len(members[p]) for image in pair_images[p])
    for s in images:  # 3-cycle, through each shared image s
        for p, q in combinations(pairs_of_image[s], 2):
            if not in_part[p]:
                continue  # q's part meets (p, q) too: an edge between two parts is counted from p's, once
            ti, tj = _other(pair_images[p], s), _other(pair_images[q], s)
            flow_ij, flow_ji = flow(ti, tj), flow(tj, ti)
            if flow_ij is None:
                continue
            i_rows, j_rows = members[p], members[q]
            xs_i, xs_j = nodes.cells_in(s, i_rows), nodes.cells_in(s, j_rows)
            xt_i, xt_j = nodes.cells_in(ti, i_rows), nodes.cells_in(tj, j_rows)
            i_in_tj = _follow(flow_ij, xt_i, flow_ji.shape[:2])  # C^{ti→tj}(x_i^t)
            j_in_ti = _follow(flow_ji, xt_j, flow_ij.shape[:2])  # C^{tj→ti}(x_j^t)
            cycle = np.exp(-_distances(xt_i, j_in_ti) / sigma) + np.exp(-_distances(i_in_tj, xt_j) / sigma)
            block = 0.5 * np.exp(-_distances(xs_i, xs_j) / sigma) * cycle * np.outer(nodes.mask[i_rows], nodes.mask[j_rows])
            if in_part[q]:
                keep(block, local(p), local(q), symmetric_copy=True)
            else:
                dropped += 2 * int(np.count_nonzero(block >= MIN_EDGE))

    part_rows = np.concatenate([members[p] for p in part]) if len(part) else np.zeros(0, np.int64)
    if not vals:
        return PartGraph(scipy.sparse.csr_matrix((n, n), dtype=np.float32), part_rows, dropped)
    matrix = scipy.sparse.coo_matrix((np.concatenate(vals).astype(np.float32),
                                      (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return PartGraph(matrix.tocsr(), part_rows, dropped)


def three_cycles(nodes: Nodes, pair_images: Sequence[tuple[int, int]], predicted: Callable[[int, int], bool]) -> Iterator[tuple[int, int]]:
    """The pairs of pairs ``(p, q)`` (``p < q``, both with nodes) whose nodes the 3-cycles may join: they share
    an image and the pair of their two other images was run (``predicted``)."""
    members = _rows_by_pair(nodes, len(pair_images))
    for s, pair_ids in _pairs_of_image(members, pair_images).items():
        for p, q in combinations(pair_ids, 2):
            if predicted(_other(pair_images[p], s), _other(pair_images[q], s)):
                yield p, q


def _rows_by_pair(nodes: Nodes, n_pairs: int) -> list[np.ndarray]:
    bounds = np.searchsorted(nodes.pair, np.arange(n_pairs + 1))
    return [np.arange(bounds[p], bounds[p + 1]) for p in range(n_pairs)]


def _pairs_of_image(members: list[np.ndarray], pair_images: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    """Image → the pairs with nodes that contain it, ascending; images in the order the pairs meet them."""
    pairs_of_image = defaultdict(list)
    for p, (a, b) in enumerate(pair_images):
        if len(members[p]):
            pairs_of_image[a].append(p)
            pairs_of_image[b].append(p)
    return pairs_of_image


def _other(pair: tuple[int, int], image: int) -> int:
    return pair[1] if image == pair[0] else pair[0]


def _follow(flow: np.ndarray, cells: np.ndarray, target_grid: tuple[int, int]) -> np.ndarray:
    """Where ``flow`` sends each cell, in the target's cell units (cell centres at integer positions)."""
    h, w = target_grid
    xy = flow[cells[:, 1], cells[:, 0]]
    return np.stack([xy[:, 0] * w - 0.5, xy[:, 1] * h - 0.5], axis=1)


def _distances(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    diff = p[:, None, :].astype(np.float32) - q[None, :, :].astype(np.float32)
    return np.sqrt((diff**2).sum(-1))


def leading_eigenvectors(graph: scipy.sparse.spmatrix, k: int, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending) and their eigenvectors (n×k columns) of the symmetric
    ``graph``; each vector's sign is chosen so that it sums to a positive value. ``tol``: ARPACK's
    relative accuracy (0: machine precision)."""
    n = graph.shape[0]
    k = min(k, n)
    if k == 0:
        return np.zeros(0), np.zeros((n, 0))
    if n <= max(2 * k + 1, 64):  # ARPACK needs k < n; tiny graphs are cheaper dense anyway
        values, vectors = np.linalg.eigh(graph.toarray())
        values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
    else:
        values, vectors = scipy.sparse.linalg.eigsh(graph.astype(np.float64), k=k, which="LA", v0=np.ones(n), tol=tol)
        order = np.argsort(-values)
        values, vectors = values[order], vectors[:, order]
    signs = np.where(vectors.sum(axis=0) < 0, -1.0, 1.0)
    return values, vectors * signs
