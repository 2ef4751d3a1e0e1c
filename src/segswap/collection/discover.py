"""Discovery: "what repeats across this collection?" (paper Sec. 5).

Each image is paired with its ``top_k`` nearest images by descriptor (never all pairs); the pair model
runs on those pairs from the index's cached features; their confident correspondences make the graph
of :mod:`segswap.collection.graph`. The graph's ``N_eig`` leading eigenvectors embed every node, k-means
groups the embedded nodes, and each group is a repeated pattern: the images its nodes lie in, and where.

A node's embedding is |eigenvector entries| × eigenvalues. The leading eigenvectors each live on one
dense, consistent pattern, several on a big one, where their signs split it into parts; their
magnitudes say which pattern a node belongs to, and the eigenvalues let the strongest modes dominate
the many weak ones. Nodes outside every pattern embed near the origin; the clusters whose centre lies
there (below ``BACKGROUND`` × the farthest centre's norm) are not patterns and are dropped.

Memory is bounded: predictions are reduced as they arrive to their nodes and their flows
(a temporary file in the index folder, read back by the 3-cycles), and a graph of more than
``NODE_BUDGET`` nodes is split into parts of at most that many (:mod:`segswap.collection.partition`);
each part gets its eigenvectors and k-means, with shares of ``N_EIG`` and K in proportion to its nodes.
Edges between parts are dropped (and counted). A graph within the budget is one part: the whole graph,
with all ``N_EIG`` eigenvectors and K clusters. No dense image × image or node × node array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.cluster import KMeans
from tqdm import tqdm

from ..errors import SegswapError
from ..grid import box_overlap, cells_to_pixels
from ..progress import ProgressCallback, report_step, stage
from .graph import Nodes, PartGraph, StreamedPairs, cell_sums, leading_eigenvectors, part_graph, three_cycles
from .index import CollectionIndex, IndexedImage
from .methods import DISCOVERY_DESIGNS, DISCOVERY_TOP_K, check_design
from .predictions import neighbour_pairs, predict_pairs
from .partition import pair_links, partition
from .regions import SAME_REGION, discover_regions

#: Eigenvectors embedding the nodes (the authors used 100, with 500 clusters, on 900k nodes).
N_EIG = 100
#: A cluster whose centre's norm is below this fraction of the largest is the "no pattern" cluster.
BACKGROUND = 0.1
#: An image belongs to a pattern when the pattern's node weight there is at least this fraction of its
#: weight in its strongest image: a lone node (one endpoint of a stray match) does not make a member.
MEMBER_FRACTION = 0.25
#: Nodes per part of the graph (its eigenvectors are taken a part at a time): sized so that a part's matrix,
#: ARPACK's Lanczos vectors and the embedding stay near 2 GB at a co-segmentation collection's density, and
#: the client of a 100,000-image collection under 4 GB; collections of a few thousand images are one part,
#: with the answers of the unsplit graph (docs/scale.md).
NODE_BUDGET = 400_000
#: The fewest eigenvectors a part of a split graph gets (a part gets N_EIG × its share of the nodes).
PART_EIGENVECTORS = 10
#: ARPACK's tolerance for the parts of a split graph: half the time of machine precision on a part near
#: NODE_BUDGET, the eigenvalues unchanged to 1e-10 (docs/scale.md). An unsplit graph keeps machine precision.
PART_TOLERANCE = 1e-6


@dataclass
class ClusterImage:
    """Where one pattern lies in one image."""

    image: IndexedImage
    weight: np.ndarray  # token grid: summed confidence of the cluster's nodes in each cell
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels, around those cells


@dataclass
class Cluster:
    strength: float  # total weight of the graph's edges inside the cluster
    nodes: int
    images: list[ClusterImage]

    def as_json(self) -> dict:
        return {"strength": round(self.strength, 4), "nodes": self.nodes,
                "images": [{"path": str(m.image.path), "box": list(m.box),
                            "canvas": None if m.image.canvas is None else m.image.canvas.as_json(m.box, m.image.size)}
                           for m in self.images]}


@dataclass
class Discovery:
    clusters: list[Cluster]  # strongest first; only clusters spanning two images or more
    images: int
    pairs: int
    nodes: int
    edges: int  # entries of the graph's matrices (both directions), the edges between parts not included
    parts: int = 1  # the graph was split into this many parts (NODE_BUDGET)
    dropped_edges: int = 0  # entries of edges between two parts, not in any matrix


def run_discovery(index: CollectionIndex, matcher, *, design: str = DISCOVERY_DESIGNS[0], top_k: int | None = None,
                  clusters: int | None = None, min_evidence: float = 1.0, flip: bool = False, show_progress: bool = True,
                  on_progress: ProgressCallback | None = None, engine=None):
    """`segswap discover`: the patterns of ``index`` by ``design`` (:data:`~segswap.collection.methods.DISCOVERY_DESIGNS`):
    a :class:`~segswap.collection.regions.RegionDiscovery` or a :class:`Discovery`."""
    check_design(design, clusters, min_evidence)
    top_k = top_k or DISCOVERY_TOP_K
    if design == "regions":
        return discover_regions(index, matcher, top_k=top_k, min_evidence=min_evidence, flip=flip,
                                show_progress=show_progress, on_progress=on_progress, engine=engine)
    return discover(index, matcher, top_k=top_k, clusters=clusters, flip=flip,
                    show_progress=show_progress, on_progress=on_progress, engine=engine)


def discovery_json(found) -> dict:
    """What `segswap discover --json` writes, for either design: a one-line ``summary``, the counts, the
    ``patterns`` (each ``kind``, ``strength``, ``images`` with ``path``, ``box`` and folded ``near_duplicates``)."""
    from .regions import RegionDiscovery

    if isinstance(found, RegionDiscovery):
        repeats = sum(p.kind == "repeat" for p in found.patterns)
        groups = len(found.patterns) - repeats
        return {"design": "regions", "images": found.images, "pairs": found.pairs, "edges": found.edges,
                "thresholds": found.thresholds, "patterns": [p.as_json() for p in found.patterns],
                "summary": f"{found.images} images, {found.pairs} pairs judged, {found.edges} verified: {repeats} "
                           f"repeated patterns, {groups} groups of near-duplicates"}
    split = (f" in {found.parts} parts ({found.dropped_edges} edges between parts dropped)" if found.parts > 1 else "")
    return {"design": "spectral", "images": found.images, "pairs": found.pairs, "nodes": found.nodes,
            "edges": found.edges, "parts": found.parts, "dropped_edges": found.dropped_edges,
            "patterns": [{"kind": "repeat", **c.as_json()} for c in found.clusters],
            "summary": f"{found.images} images, {found.pairs} pairs, {found.nodes} correspondences, {found.edges} "
                       f"edges{split}: {len(found.clusters)} repeated patterns"}


def default_clusters(n_images: int) -> int:
    """k-means' K when the user gives none: one per five images (the authors: 500 for ≈1,600 images),
    at least 3 (two patterns and the rest), at most 500."""
    return int(np.clip(n_images // 5, 3, 500))


def discover(index: CollectionIndex, matcher, *, top_k: int = DISCOVERY_TOP_K, clusters: int | None = None, flip: bool = False,
             show_progress: bool = True, on_progress: ProgressCallback | None = None, engine=None) -> Discovery:
    """Find the patterns that repeat across the images of ``index``. ``on_progress`` hears each step (it may
    cancel; see :data:`segswap.progress.ProgressCallback`). With an ``engine``
    (:class:`segswap.cluster.DaskEngine`) its workers run the pair model, reading the index's shards;
    the graph and the clustering stay here."""
    if top_k < 1:
        raise SegswapError(f"--top-k must be at least 1, got {top_k}")
    if clusters is not None and clusters < 1:
        raise SegswapError(f"--clusters must be at least 1, got {clusters}")
    if matcher.backbone.name != index.backbone:
        raise SegswapError(f"{index.path} holds {index.backbone} features; the model runs on {matcher.backbone.name}")
    report_step(on_progress, "shortlisting neighbours by descriptor")
    with stage("shortlisting neighbours by descriptor", show_progress):
        ids, regional = index.regional_descriptors()
        pairs = neighbour_pairs(index.descriptor_index(), regional, ids, top_k)
    # The flows' file goes beside the index's features (a disk sized for the collection), or to the
    # temporary folder when the index is read-only.
    spill = index.path if os.access(index.path, os.W_OK) else None
    with StreamedPairs(pairs, folder=spill) as streamed:
        if engine is None:
            predict_pairs(matcher, index.features, pairs, flip=flip, show_progress=show_progress, on_progress=on_progress,
                          sink=streamed)
        else:
            engine.predict_pairs(matcher, index.feature_locations(), pairs, flip=flip, show_progress=show_progress,
                                 sink=streamed)
        nodes = streamed.nodes()
        patterns = find_patterns(nodes, pairs, streamed, clusters or default_clusters(len(ids)), show_progress, on_progress)
    found = []
    for strength, rows in patterns.clusters:
        members = _members(index, nodes, rows)
        if len(members) >= 2:
            found.append(Cluster(strength, len(rows), members))
    found = merged_clusters(sorted(found, key=lambda c: -c.strength))
    return Discovery(found, len(ids), len(pairs), len(nodes), patterns.edges, len(patterns.parts), patterns.dropped_edges)


@dataclass
class Patterns:
    """What the graph's clustering found, before it is mapped to images."""

    clusters: list[tuple[float, np.ndarray]]  # (strength, node rows) of each cluster with edges inside
    parts: list[np.ndarray]  # the pairs of each part of the graph
    edges: int
    dropped_edges: int


def find_patterns(nodes: Nodes, pair_images: Sequence[tuple[int, int]], streamed: StreamedPairs, k: int,
                  show_progress: bool = False, on_progress: ProgressCallback | None = None,
                  budget: int | None = None) -> Patterns:
    """The clusters of the correspondence graph over ``nodes`` (made from the pairs ``pair_images``, their
    flows in ``streamed``), into ``k`` clusters in all; the graph is split into parts of at most
    ``budget`` nodes (default ``NODE_BUDGET``) first when it is larger."""
    budget = NODE_BUDGET if budget is None else budget
    mass = np.bincount(nodes.pair, minlength=len(pair_images))
    if len(nodes) <= budget:
        parts = [np.flatnonzero(mass)]
    else:
        report_step(on_progress, "partitioning the graph")
        with stage(f"partitioning the graph ({len(nodes)} nodes) into parts of at most {budget}", show_progress):
            linked = np.fromiter((p for cycle in three_cycles(nodes, pair_images, streamed.ran) for p in cycle),
                                 np.int64).reshape(-1, 2)
            parts = partition(mass, pair_links(len(pair_images), linked, mass), budget)
    clusters, edges, dropped = [], 0, 0
    one = len(parts) == 1  # the whole graph: its own stages, as before the graph could be split
    progress = tqdm(total=len(nodes), unit="node", desc=f"clustering {len(parts)} parts of the graph",
                    disable=one or not show_progress)
    for part in parts:
        share = mass[part].sum() / max(len(nodes), 1)
        eigenvectors = min(N_EIG, max(PART_EIGENVECTORS, round(N_EIG * share)))
        report_step(on_progress, "building the correspondence graph", progress.n, len(nodes))
        with stage("building the correspondence graph", one and show_progress):
            graph = part_graph(nodes, pair_images, streamed.flow, part)
        report_step(on_progress, "clustering the graph", progress.n, len(nodes))
        if len(graph.rows):
            clusters += _clusters(graph, eigenvectors, max(1, round(k * share)), 0.0 if one else PART_TOLERANCE,
                                  one and show_progress)
        edges += graph.matrix.nnz
        dropped += graph.dropped
        progress.update(len(graph.rows))
    progress.close()
    return Patterns(clusters, parts, edges, dropped)


def _clusters(graph: PartGraph, eigenvectors: int, k: int, tol: float,
              show_progress: bool = False) -> list[tuple[float, np.ndarray]]:
    """(strength, node rows) of each cluster of one part that is not the background, with edges inside."""
    n = len(graph.rows)
    k = min(k, n)
    with stage(f"leading eigenvectors of the graph ({n} nodes)", show_progress):
        values, vectors = leading_eigenvectors(graph.matrix, min(eigenvectors, max(1, n - 1)), tol)
    embedding = np.abs(vectors) * np.clip(values, 0, None)
    with stage(f"k-means into {k} clusters", show_progress):
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=0).fit(embedding)
    centre_norms = np.linalg.norm(kmeans.cluster_centers_, axis=1)
    found = []
    for label in np.flatnonzero(centre_norms >= BACKGROUND * centre_norms.max()):
        rows = np.flatnonzero(kmeans.labels_ == label)
        strength = float(graph.matrix[rows][:, rows].sum()) / 2
        if strength > 0:
            found.append((strength, graph.rows[rows]))
    return found


def merged_clusters(clusters: list[Cluster]) -> list[Cluster]:
    """``clusters`` (strongest first) with those over the same images whose regions overlap in every one of
    them (the smaller box at least :data:`SAME_REGION` inside the other) made one: k-means cuts one repeated
    thing into several clusters over the same images. Strongest first."""
    kept: list[Cluster] = []
    for cluster in clusters:
        boxes = {m.image.id: m.box for m in cluster.images}
        same = next((k for k in kept if {m.image.id: m.box for m in k.images}.keys() == boxes.keys()
                     and all(box_overlap(m.box, boxes[m.image.id]) >= SAME_REGION for m in k.images)), None)
        if same is None:
            kept.append(cluster)
            continue
        weights = {m.image.id: m.weight for m in cluster.images}
        for member in same.images:
            member.weight = member.weight + weights[member.image.id]
            member.box = _weight_box(member.weight, member.image)
        same.strength += cluster.strength
        same.nodes += cluster.nodes
    return sorted(kept, key=lambda c: -c.strength)


def _members(index: CollectionIndex, nodes: Nodes, rows: np.ndarray) -> list[ClusterImage]:
    """The images a cluster's nodes lie in, each with its node weight per cell and the box around it."""
    cluster = nodes.subset(rows)
    images = {int(i): index.image(int(i)) for i in np.unique(np.concatenate([cluster.image_a, cluster.image_b]))}
    weights = cell_sums(cluster, cluster.mask, {i: image.grid for i, image in images.items()})
    members = []
    for image_id, image in images.items():
        members.append(ClusterImage(image, weights[image_id], _weight_box(weights[image_id], image)))
    strongest = max(float(m.weight.sum()) for m in members)
    members = [m for m in members if float(m.weight.sum()) >= MEMBER_FRACTION * strongest]
    return sorted(members, key=lambda m: -float(m.weight.sum()))


def _weight_box(weight: np.ndarray, image: IndexedImage) -> tuple[int, int, int, int]:
    """The pixel box around the cells of ``image``'s token grid where ``weight`` is not zero."""
    ys, xs = np.nonzero(weight)
    return cells_to_pixels((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), image.grid, image.size)
