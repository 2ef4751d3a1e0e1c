"""Splitting discovery's graph into parts of bounded size, so that its spectral step fits in memory.

The units split are the pairs: a pair's nodes always stay together (its 2-cycle edges are never cut).
Two pairs are linked when the 3-cycles may join their nodes (:func:`segswap.collection.graph.three_cycles`).
Connected components of that pair graph are split apart first (no edge crosses them: nothing is lost);
a component heavier than the budget is cut by METIS (pymetis) into pieces of about the budget with as
few links between them as it finds; then the pieces are packed, heaviest first, into parts of at most
the budget. A graph within the budget stays one part.
"""

from __future__ import annotations

import math

import numpy as np
import pymetis
import scipy.sparse
from scipy.sparse.csgraph import connected_components

#: METIS may exceed a requested part weight by a few per cent (its default imbalance, 3 %); pieces are
#: requested this much lighter than the budget so that they stay within it.
METIS_MARGIN = 0.9


def pair_links(n_pairs: int, linked: np.ndarray, mass: np.ndarray) -> scipy.sparse.csr_matrix:
    """The symmetric pair graph: ``linked`` (m×2) pairs of pairs, each weighted by the smaller pair's node
    count (the 3-cycle edges between two pairs grow with both; METIS takes integer weights, and this
    bound keeps their sum far below 2³¹ at 100,000 images)."""
    p, q = np.asarray(linked, np.int64).reshape(-1, 2).T
    weight = np.minimum(mass[p], mass[q]).astype(np.int64)
    return scipy.sparse.coo_matrix((np.concatenate([weight, weight]), (np.concatenate([p, q]), np.concatenate([q, p]))),
                                   shape=(n_pairs, n_pairs)).tocsr()


def partition(mass: np.ndarray, links: scipy.sparse.csr_matrix, budget: int) -> list[np.ndarray]:
    """The pairs with ``mass`` > 0 (node counts), in parts whose mass is at most ``budget`` where possible
    (one pair heavier than it is a part of its own); each part's pairs ascending. Deterministic: METIS runs with a fixed seed."""
    used = np.flatnonzero(mass > 0)
    if mass.sum() <= budget:
        return [used]
    count, label = connected_components(links[used][:, used], directed=False)
    order = np.argsort(label, kind="stable")
    components = np.split(used[order], np.cumsum(np.bincount(label, minlength=count))[:-1])
    pieces = []
    for component in components:
        weight = int(mass[component].sum())
        if weight <= budget or len(component) == 1:
            pieces.append(component)
        else:
            pieces += _metis(component, mass, links, math.ceil(weight / (METIS_MARGIN * budget)))
    return _pack(pieces, mass, budget)


def _metis(component: np.ndarray, mass: np.ndarray, links: scipy.sparse.csr_matrix, parts: int) -> list[np.ndarray]:
    sub = links[component][:, component].tocsr()
    sub.sort_indices()
    _, labels = pymetis.part_graph(parts, pymetis.CSRAdjacency(sub.indptr, sub.indices), vweights=mass[component],
                                   eweights=sub.data, options=pymetis.Options(seed=0))
    labels = np.asarray(labels)
    return [component[labels == k] for k in range(parts) if (labels == k).any()]


def _pack(pieces: list[np.ndarray], mass: np.ndarray, budget: int) -> list[np.ndarray]:
    """First-fit decreasing: each piece, heaviest first, into the first part with room for it."""
    weights = [int(mass[piece].sum()) for piece in pieces]
    parts: list[list[np.ndarray]] = []
    room: list[int] = []
    for k in sorted(range(len(pieces)), key=lambda k: -weights[k]):
        home = next((b for b, free in enumerate(room) if free >= weights[k]), None)
        if home is None:
            parts.append([])
            room.append(budget)
            home = len(parts) - 1
        parts[home].append(pieces[k])
        room[home] -= weights[k]
    return [np.sort(np.concatenate(part)) for part in parts]
