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
block per pair, or per two pairs sharing an image), never as a dense node × node array.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .pairs import PairPrediction

#: A cell becomes a node when its predicted mask is above this (the authors' value).
NODE_THRESHOLD = 0.85
#: Edges lighter than this are dropped (the authors' value).
MIN_EDGE = 0.01
#: Distance scale of Eq. 4, in cells. The authors chose 0.8–5 per dataset; on our synthetic planted
#: groups (4 × 8 images) co-segmentation J fell as σ grew (0.77 at 0.8, 0.73 at 1.2, 0.62 at 2,
#: 0.56 at 5), so we take the low end of their range (0.5 gave 0.83, but exact pasted copies favour
#: a tight σ more than real repeats would).
SIGMA = 0.8


@dataclass
class Nodes:
    """Correspondences kept as graph nodes, one row each."""

    pair: np.ndarray  # index into the graph's pair list
    image_a: np.ndarray  # the pair's images
    image_b: np.ndarray
    cell_a: np.ndarray  # n×2 int (x, y) cell in image a
    cell_b: np.ndarray  # n×2 int (x, y) cell in image b
    mask: np.ndarray  # predicted mask value (confidence)

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


def graph_nodes(predictions: Sequence[PairPrediction], threshold: float = NODE_THRESHOLD) -> Nodes:
    """The confident correspondences of each prediction (a node list ordered by pair)."""
    columns = {k: [] for k in ("pair", "image_a", "image_b", "cell_a", "cell_b", "mask")}
    for p, pred in enumerate(predictions):
        on_a, on_b = pred.mask_a > threshold, pred.mask_b > threshold
        if not on_a.any() and not on_b.any():
            continue
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
        n = len(keep)
        columns["pair"].append(np.full(n, p))
        columns["image_a"].append(np.full(n, pred.a))
        columns["image_b"].append(np.full(n, pred.b))
        columns["cell_a"].append(cells_a[keep])
        columns["cell_b"].append(cells_b[keep])
        columns["mask"].append(mask[keep])
    if not columns["pair"]:
        empty = np.zeros(0, np.int64)
        return Nodes(empty, empty, empty, np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64), np.zeros(0, np.float32))
    return Nodes(*(np.concatenate(columns[k]) for k in ("pair", "image_a", "image_b", "cell_a", "cell_b", "mask")))


def _confident_matches(mask: np.ndarray, on: np.ndarray, flow: np.ndarray, other_grid: tuple[int, int]):
    ys, xs = np.nonzero(on)
    h, w = other_grid
    tx = np.clip((flow[ys, xs, 0] * w).astype(np.int64), 0, w - 1)
    ty = np.clip((flow[ys, xs, 1] * h).astype(np.int64), 0, h - 1)
    return np.stack([xs, ys], 1).astype(np.int64), np.stack([tx, ty], 1), mask[ys, xs].astype(np.float32)


def _on_border(cells: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    h, w = grid
    return (cells[:, 0] == 0) | (cells[:, 1] == 0) | (cells[:, 0] == w - 1) | (cells[:, 1] == h - 1)


def correspondence_graph(nodes: Nodes, graph_pairs: Sequence[PairPrediction], all_predictions: Sequence[PairPrediction],
                         sigma: float = SIGMA) -> scipy.sparse.csr_matrix:
    """The symmetric sparse adjacency matrix over ``nodes`` (made from ``graph_pairs``); 3-cycle edges
    read flows from any pair in ``all_predictions``."""
    rows, cols, vals = [], [], []

    def keep(block: np.ndarray, first: np.ndarray, second: np.ndarray, symmetric_copy: bool) -> None:
        i, j = np.nonzero(block >= MIN_EDGE)
        rows.append(first[i]), cols.append(second[j]), vals.append(block[i, j])
        if symmetric_copy:
            rows.append(second[j]), cols.append(first[i]), vals.append(block[i, j])

    members = _rows_by_pair(nodes, len(graph_pairs))
    for p, idx in enumerate(members):  # 2-cycle
        if len(idx) < 2:
            continue
        d = _distances(nodes.cell_a[idx], nodes.cell_a[idx]) + _distances(nodes.cell_b[idx], nodes.cell_b[idx])
        block = np.exp(-d / (2 * sigma)) * np.outer(nodes.mask[idx], nodes.mask[idx])
        np.fill_diagonal(block, 0.0)
        keep(block, idx, idx, symmetric_copy=False)

    predicted = {(pred.a, pred.b): pred for pred in all_predictions}
    predicted.update({(pred.b, pred.a): pred for pred in all_predictions})
    pairs_of_image = defaultdict(list)
    for p, pred in enumerate(graph_pairs):
        if len(members[p]):
            pairs_of_image[pred.a].append(p)
            pairs_of_image[pred.b].append(p)
    for s, pair_ids in pairs_of_image.items():  # 3-cycle, through each shared image s
        for p, q in combinations(pair_ids, 2):
            ti, tj = _other(graph_pairs[p], s), _other(graph_pairs[q], s)
            third = predicted.get((ti, tj))
            if third is None:
                continue
            i_rows, j_rows = members[p], members[q]
            xs_i, xs_j = nodes.cells_in(s, i_rows), nodes.cells_in(s, j_rows)
            xt_i, xt_j = nodes.cells_in(ti, i_rows), nodes.cells_in(tj, j_rows)
            i_in_tj = _follow(third.flow_from(ti), xt_i, third.mask_of(tj).shape)  # C^{ti→tj}(x_i^t)
            j_in_ti = _follow(third.flow_from(tj), xt_j, third.mask_of(ti).shape)  # C^{tj→ti}(x_j^t)
            cycle = np.exp(-_distances(xt_i, j_in_ti) / sigma) + np.exp(-_distances(i_in_tj, xt_j) / sigma)
            block = 0.5 * np.exp(-_distances(xs_i, xs_j) / sigma) * cycle * np.outer(nodes.mask[i_rows], nodes.mask[j_rows])
            keep(block, i_rows, j_rows, symmetric_copy=True)

    n = len(nodes)
    if not vals:
        return scipy.sparse.csr_matrix((n, n), dtype=np.float32)
    matrix = scipy.sparse.coo_matrix((np.concatenate(vals).astype(np.float32),
                                      (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return matrix.tocsr()


def _rows_by_pair(nodes: Nodes, n_pairs: int) -> list[np.ndarray]:
    bounds = np.searchsorted(nodes.pair, np.arange(n_pairs + 1))
    return [np.arange(bounds[p], bounds[p + 1]) for p in range(n_pairs)]


def _other(pred: PairPrediction, image: int) -> int:
    return pred.b if image == pred.a else pred.a


def _follow(flow: np.ndarray, cells: np.ndarray, target_grid: tuple[int, int]) -> np.ndarray:
    """Where ``flow`` sends each cell, in the target's cell units (cell centres at integer positions)."""
    h, w = target_grid
    xy = flow[cells[:, 1], cells[:, 0]]
    return np.stack([xy[:, 0] * w - 0.5, xy[:, 1] * h - 0.5], axis=1)


def _distances(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    diff = p[:, None, :].astype(np.float32) - q[None, :, :].astype(np.float32)
    return np.sqrt((diff**2).sum(-1))


def leading_eigenvectors(graph: scipy.sparse.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenvalues (descending) and their eigenvectors (n×k columns) of the symmetric
    ``graph``; each vector's sign is chosen so that it sums to a positive value."""
    n = graph.shape[0]
    k = min(k, n)
    if k == 0:
        return np.zeros(0), np.zeros((n, 0))
    if n <= max(2 * k + 1, 64):  # ARPACK needs k < n; tiny graphs are cheaper dense anyway
        values, vectors = np.linalg.eigh(graph.toarray())
        values, vectors = values[::-1][:k], vectors[:, ::-1][:, :k]
    else:
        values, vectors = scipy.sparse.linalg.eigsh(graph.astype(np.float64), k=k, which="LA", v0=np.ones(n))
        order = np.argsort(-values)
        values, vectors = values[order], vectors[:, order]
    signs = np.where(vectors.sum(axis=0) < 0, -1.0, 1.0)
    return values, vectors * signs
