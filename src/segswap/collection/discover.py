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

Memory: the pair predictions (token grids), the node list and the sparse graph — no dense image × image
or node × node array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from sklearn.cluster import KMeans

from ..errors import SegswapError
from ..grid import cells_to_pixels
from ..progress import ProgressReport, report_step, stage
from .graph import Nodes, cell_sums, correspondence_graph, graph_nodes, leading_eigenvectors
from .index import CollectionIndex, IndexedImage
from .pairs import neighbour_pairs, predict_pairs

#: Eigenvectors embedding the nodes (the authors used 100, with 500 clusters, on 900k nodes).
N_EIG = 100
#: A cluster whose centre's norm is below this fraction of the largest is the "no pattern" cluster.
BACKGROUND = 0.1
#: An image belongs to a pattern when the pattern's node weight there is at least this fraction of its
#: weight in its strongest image: a lone node (one endpoint of a stray match) does not make a member.
MEMBER_FRACTION = 0.25


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
                "images": [{"path": str(m.image.path), "box": list(m.box)} for m in self.images]}


@dataclass
class Discovery:
    clusters: list[Cluster]  # strongest first; only clusters spanning two images or more
    images: int
    pairs: int
    nodes: int
    edges: int


def default_clusters(n_images: int) -> int:
    """k-means' K when the user gives none: one per five images (the authors: 500 for ≈1,600 images),
    at least 3 (two patterns and the rest), at most 500."""
    return int(np.clip(n_images // 5, 3, 500))


def discover(index: CollectionIndex, matcher, *, top_k: int = 5, clusters: int | None = None, flip: bool = False,
             show_progress: bool = True, report: ProgressReport | None = None, engine=None) -> Discovery:
    """Find the patterns that repeat across the images of ``index``. ``report`` hears each step (it may
    cancel; see :data:`segswap.progress.ProgressReport`). With an ``engine``
    (:class:`segswap.cluster.DaskEngine`) its workers run the pair model, reading the index's shards;
    the graph and the clustering stay here."""
    if top_k < 1:
        raise SegswapError(f"--top-k must be at least 1, got {top_k}")
    if clusters is not None and clusters < 1:
        raise SegswapError(f"--clusters must be at least 1, got {clusters}")
    if matcher.backbone.name != index.backbone:
        raise SegswapError(f"{index.path} holds {index.backbone} features; the model runs on {matcher.backbone.name}")
    report_step(report, "shortlisting neighbours by descriptor")
    with stage("shortlisting neighbours by descriptor", show_progress):
        ids, regional = index.regional_descriptors()
        pairs = neighbour_pairs(index.descriptor_index(), regional, ids, top_k)
    if engine is None:
        predictions = predict_pairs(matcher, index.features, pairs, flip=flip, show_progress=show_progress,
                                    report=report)
    else:
        predictions = engine.predict_pairs(matcher, index.feature_locations(), pairs, flip=flip,
                                           show_progress=show_progress)
    report_step(report, "building the correspondence graph")
    with stage("building the correspondence graph", show_progress):
        nodes = graph_nodes(predictions)
        graph = correspondence_graph(nodes, predictions, predictions)
    k = clusters or default_clusters(len(ids))
    report_step(report, "clustering the graph")
    found = _clusters(index, nodes, graph, k, show_progress) if len(nodes) else []
    return Discovery(found, len(ids), len(pairs), len(nodes), graph.nnz)


def _clusters(index: CollectionIndex, nodes: Nodes, graph: scipy.sparse.csr_matrix, k: int,
              show_progress: bool = False) -> list[Cluster]:
    k = min(k, len(nodes))
    with stage(f"leading eigenvectors of the graph ({len(nodes)} nodes)", show_progress):
        values, vectors = leading_eigenvectors(graph, min(N_EIG, max(1, len(nodes) - 1)))
    embedding = np.abs(vectors) * np.clip(values, 0, None)
    with stage(f"k-means into {k} clusters", show_progress):
        kmeans = KMeans(n_clusters=k, n_init=3, random_state=0).fit(embedding)
    centre_norms = np.linalg.norm(kmeans.cluster_centers_, axis=1)
    found = []
    for label in np.flatnonzero(centre_norms >= BACKGROUND * centre_norms.max()):
        rows = np.flatnonzero(kmeans.labels_ == label)
        strength = float(graph[rows][:, rows].sum()) / 2
        members = _members(index, nodes, rows)
        if strength > 0 and len(members) >= 2:
            found.append(Cluster(strength, len(rows), members))
    return sorted(found, key=lambda c: -c.strength)


def _members(index: CollectionIndex, nodes: Nodes, rows: np.ndarray) -> list[ClusterImage]:
    """The images a cluster's nodes lie in, each with its node weight per cell and the box around it."""
    cluster = nodes.subset(rows)
    images = {int(i): index.image(int(i)) for i in np.unique(np.concatenate([cluster.image_a, cluster.image_b]))}
    weights = cell_sums(cluster, cluster.mask, {i: image.grid for i, image in images.items()})
    members = []
    for image_id, image in images.items():
        weight = weights[image_id]
        ys, xs = np.nonzero(weight)
        box = cells_to_pixels((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), image.grid, image.size)
        members.append(ClusterImage(image, weight, box))
    strongest = max(float(m.weight.sum()) for m in members)
    members = [m for m in members if float(m.weight.sum()) >= MEMBER_FRACTION * strongest]
    return sorted(members, key=lambda m: -float(m.weight.sum()))
