"""Discovery by verified regions (ArtMiner's design, Shen et al. CVPR 2019, on segswap's evidence).

1. Each image's ``top_k`` nearest images by descriptor are candidate partners (as for the spectral design).
2. Every candidate pair is judged as `segswap search` judges a hit: the pair model's matched fraction (both
   ways, the larger) and the homography inliers of the index's keypoints, fused as max(matched / its
   threshold, inliers / theirs) with the thresholds calibrated for search. A pair whose fused score reaches
   ``min_evidence`` (1: either piece at its calibrated precision) is a **verified edge**; its region in
   each image is the keypoint inliers' hull where the keypoints decide, else the pair model's matched
   region (its cycle-consistent mask's strongest blob).
3. In each image, regions of its edges that overlap (the smaller box at least :data:`SAME_REGION` inside the
   other) are one **region node**.
   Verified edges join region nodes into a graph (networkx); each connected component, split by Louvain
   community detection when it is large, is a **pattern**: the same thing, in each of its images' region.
4. Images whose edge regions cover nearly all of both (≥ :data:`NEAR_DUPLICATE_AREA` of each image), or
   whose keypoints nearly all match under one homography (:data:`SAME_PHOTOGRAPH_INLIERS`), are
   **near-duplicates** (the same photograph twice, burst frames): such a group counts once, a pattern made
   of one group only is labelled ``near-duplicates``, and a pattern's members carry their group's other
   images folded beside them.

The number of patterns follows from the verified edges: no K to choose.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import SegswapError
from ..grid import box_overlap
from ..keypoints import get_matcher
from ..models.outputs import matched_fraction
from ..progress import ProgressCallback, report_step, stage
from .index import CollectionIndex, IndexedImage
from .methods import DISCOVERY_TOP_K
from .predictions import PairPrediction, neighbour_pairs, predict_pairs
from .search import REGION_THRESHOLD, calibrated_inlier_threshold, calibrated_threshold, fused_evidence, region_box

#: Regions of one image are one region node when at least this share of the smaller box lies inside the
#: other (a viewpoint change shows a wall whole in one pair and a part of it in another: one thing).
SAME_REGION = 0.5
#: A verified edge whose region boxes cover at least this fraction of both images joins near-duplicates...
NEAR_DUPLICATE_AREA = 0.8
#: ...as does one whose homography inliers are at least this fraction of the keypoints of the image with fewer:
#: the same photograph, nearly every keypoint found again, even where flat borders leave its hull short of the
#: frame (a shared object or another viewpoint leaves most keypoints unmatched; lab/rules.md, D5).
SAME_PHOTOGRAPH_INLIERS = 0.5
#: Components with more images than this may be split into communities (Louvain, networkx) so that a chance
#: edge between two patterns does not merge them...
COMMUNITY_ABOVE = 3
#: ...when the split's modularity is at least this (Newman's usual mark of real community structure): a
#: thing seen from many viewpoints is one dense group, and stays one pattern.
MIN_MODULARITY = 0.3
#: Images whose stored keypoints the judge keeps at a time.
KEYPOINT_CACHE = 64
#: Louvain's seed: the same collection gives the same patterns.
SEED = 0


@dataclass
class EdgeRegion:
    """Where a verified edge lies in one of its images."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels
    cells: np.ndarray  # bool token grid of the image: the cells of the region

    def area_fraction(self, size: tuple[int, int]) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0) / float(size[0] * size[1])


@dataclass
class VerifiedEdge:
    a: int
    b: int
    fused: float  # max(matched fraction / its threshold, inliers / theirs)
    decided_by: tuple[str, ...]  # "keypoints", "pair score": the pieces at or above their thresholds
    matched: float
    inliers: int
    region_a: EdgeRegion
    region_b: EdgeRegion
    near_duplicate: bool = False


@dataclass
class PatternImage:
    """One image of a pattern: its region there, and the near-duplicates folded beside it."""

    image: IndexedImage
    box: tuple[int, int, int, int]
    cells: np.ndarray  # bool token grid: the pattern's cells in the image
    near_duplicates: list[IndexedImage] = field(default_factory=list)


@dataclass
class Pattern:
    kind: str  # "repeat" or "near-duplicates"
    strength: float  # sum of the fused scores of the pattern's edges
    edges: int
    images: list[PatternImage]
    decided_by: dict[str, int]  # edges decided by each piece of evidence

    def as_json(self) -> dict:
        return {"kind": self.kind, "strength": round(self.strength, 4), "edges": self.edges,
                "decided_by": self.decided_by,
                "images": [{"path": str(m.image.path), "box": list(m.box),
                            "near_duplicates": [str(n.path) for n in m.near_duplicates],
                            "canvas": None if m.image.canvas is None else m.image.canvas.as_json(m.box, m.image.size)}
                           for m in self.images]}


@dataclass
class RegionDiscovery:
    patterns: list[Pattern]  # repeats first (most images, then strength), then near-duplicate groups
    images: int
    pairs: int  # candidate pairs judged
    edges: int  # verified edges
    thresholds: dict  # the matched fraction's and the inliers' (None where not calibrated)


def discover_regions(index: CollectionIndex, matcher, *, top_k: int = DISCOVERY_TOP_K, min_evidence: float = 1.0,
                     flip: bool = False, show_progress: bool = True, on_progress: ProgressCallback | None = None,
                     engine=None) -> RegionDiscovery:
    """The patterns of ``index`` by verified regions (see the module docstring). ``min_evidence``: the fused
    score an edge needs (1: the calibrated thresholds; higher asks for more)."""
    if top_k < 1:
        raise SegswapError(f"--top-k must be at least 1, got {top_k}")
    if not min_evidence > 0:
        raise SegswapError(f"--min-evidence must be above 0, got {min_evidence}")
    if matcher.backbone.name != index.backbone:
        raise SegswapError(f"{index.path} holds {index.backbone} features; the model runs on {matcher.backbone.name}")
    matched_threshold = calibrated_threshold(matcher)
    keypointer, inlier_threshold = _keypoints_of(index)
    if matched_threshold is None and inlier_threshold is None:
        raise SegswapError(f"neither the pair model's weights ({matcher.weights}) nor {index.path}'s keypoints are "
                           "calibrated: verified regions need one (`segswap eval calibrate-search`), or run --design spectral")
    report_step(on_progress, "shortlisting neighbours by descriptor")
    with stage("shortlisting neighbours by descriptor", show_progress):
        ids, regional = index.regional_descriptors()
        pairs = neighbour_pairs(index.descriptor_index(), regional, ids, top_k)
    judge = _Judge(index, keypointer, matched_threshold, inlier_threshold, min_evidence)
    if engine is None:
        predict_pairs(matcher, index.features, pairs, flip=flip, show_progress=show_progress, on_progress=on_progress,
                      sink=judge, desc="pair model")
    else:
        engine.predict_pairs(matcher, index.feature_locations(), pairs, flip=flip, show_progress=show_progress,
                             sink=judge)
    edges = judge.edges()
    report_step(on_progress, "grouping verified regions")
    with stage(f"grouping {len(edges)} verified regions into patterns", show_progress):
        patterns = group_patterns(index, edges)
    return RegionDiscovery(patterns, len(ids), len(pairs), len(edges),
                           {"matched_fraction": matched_threshold, "inliers": inlier_threshold})


def _keypoints_of(index: CollectionIndex):
    """The index's keypoint matcher and its calibrated inliers, or (None, None) without keypoints."""
    settings = index.keypoint_settings
    if settings is None or index.without_keypoints():
        return None, None
    from ..keypoints import is_installed

    if not is_installed(settings["matcher"]):
        return None, None
    return get_matcher(settings["matcher"], **settings["conf"]), calibrated_inlier_threshold(settings)


class _Judge:
    """Takes each pair prediction as it is made (a :func:`predict_pairs` sink) and keeps the verified edges."""

    def __init__(self, index: CollectionIndex, keypointer, matched_threshold, inlier_threshold, min_evidence: float):
        self.index, self.keypointer = index, keypointer
        self.matched_threshold, self.inlier_threshold, self.min_evidence = matched_threshold, inlier_threshold, min_evidence
        self.images: dict[int, IndexedImage] = {}
        # Pairs come sorted by their first image: a few recent images' keypoints serve most reads, and
        # keeping every image's (≈0.27 MB each) would hold a 1,000-image collection's in memory.
        self._features = functools.lru_cache(maxsize=KEYPOINT_CACHE)(index.keypoints)
        self._edges: dict[int, VerifiedEdge] = {}

    def __call__(self, position: int, pred: PairPrediction) -> None:
        image_a, image_b = self.image(pred.a), self.image(pred.b)
        matched = max(float(matched_fraction(pred.score_ab, pred.mask_a.shape)),
                      float(matched_fraction(pred.score_ba, pred.mask_b.shape)))
        inliers, fit, fewest = 0, None, 0
        if self.keypointer is not None:
            inliers, fit, fewest = self._inliers(pred.a, pred.b)
        fused, decided = fused_evidence(matched, self.matched_threshold, inliers, self.inlier_threshold,
                                        at=self.min_evidence)
        if fused < self.min_evidence:
            return
        if "keypoints" in decided:
            region_a, region_b = (_hull_region(points, image.grid, image.size)
                                  for points, image in zip(fit, (image_a, image_b)))
        else:
            region_a, region_b = _pair_regions(pred, image_a, image_b)
        edge = VerifiedEdge(pred.a, pred.b, fused, decided, matched, inliers, region_a, region_b)
        edge.near_duplicate = ((region_a.area_fraction(image_a.size) >= NEAR_DUPLICATE_AREA
                                and region_b.area_fraction(image_b.size) >= NEAR_DUPLICATE_AREA)
                               or ("keypoints" in decided and inliers >= SAME_PHOTOGRAPH_INLIERS * fewest))
        self._edges[position] = edge

    def image(self, image_id: int) -> IndexedImage:
        if image_id not in self.images:
            self.images[image_id] = self.index.image(image_id)
        return self.images[image_id]

    def _inliers(self, a: int, b: int) -> tuple[int, tuple[np.ndarray, np.ndarray], int]:
        """The homography's inliers, their points in each image, and the keypoints of the image with fewer."""
        feats_a, feats_b = self._features(a), self._features(b)
        found = self.keypointer.match(None, None, feats_a=feats_a, feats_b=feats_b)
        return (found["geometry"].count, (found["keypoints_a"][found["inliers"]], found["keypoints_b"][found["inliers"]]),
                min(len(feats_a["keypoints"]), len(feats_b["keypoints"])))

    def edges(self) -> list[VerifiedEdge]:
        return [self._edges[k] for k in sorted(self._edges)]


def _pair_regions(pred: PairPrediction, image_a: IndexedImage, image_b: IndexedImage) -> tuple[EdgeRegion, EdgeRegion]:
    """The pair model's matched region in each image: its cycle-consistent mask's strongest blob."""
    import torch

    from ..models.outputs import cycle_consistent_mask

    regions = []
    for own, other, flow, image in ((pred.mask_a, pred.mask_b, pred.flow_ab, image_a),
                                    (pred.mask_b, pred.mask_a, pred.flow_ba, image_b)):
        cycle = cycle_consistent_mask(torch.from_numpy(own)[None], torch.from_numpy(other)[None],
                                      torch.from_numpy(flow)[None])[0].numpy()
        box = region_box(cycle, image.size)
        if box is None:  # the score passed on diffuse cells: the whole image is the region
            box = (0, 0, image.size[0], image.size[1])
        regions.append(EdgeRegion(box, cycle > REGION_THRESHOLD))
    return regions[0], regions[1]


def _hull_region(points: np.ndarray, grid: tuple[int, int], size: tuple[int, int]) -> EdgeRegion:
    """The convex hull of keypoint ``points`` (the image's pixels) as a box and as token cells."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    box = (max(0, int(x0)), max(0, int(y0)), min(size[0], int(x1) + 1), min(size[1], int(y1) + 1))
    h, w = grid
    scaled = (points * np.array([w / size[0], h / size[1]])).astype(np.float32)
    cells = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(cells, cv2.convexHull(scaled).astype(np.int32), 1)
    cells[np.clip(scaled[:, 1].astype(int), 0, h - 1), np.clip(scaled[:, 0].astype(int), 0, w - 1)] = 1
    return EdgeRegion(box, cells.astype(bool))


def group_patterns(index: CollectionIndex, edges: list[VerifiedEdge]) -> list[Pattern]:
    """Region nodes, their graph, its components and communities, folded near-duplicates → patterns."""
    import networkx as nx

    nodes: dict[int, list[EdgeRegion]] = {}  # image → its region nodes (merged edge regions)

    def node_of(image: int, region: EdgeRegion) -> tuple[int, int]:
        regions = nodes.setdefault(image, [])
        for k, known in enumerate(regions):
            if box_overlap(known.box, region.box) >= SAME_REGION:
                regions[k] = EdgeRegion(_union_box([known.box, region.box]), known.cells | region.cells)
                return image, k
        regions.append(region)
        return image, len(regions) - 1

    graph = nx.Graph()
    near = nx.Graph()
    for edge in edges:
        u, v = node_of(edge.a, edge.region_a), node_of(edge.b, edge.region_b)
        if graph.has_edge(u, v):
            graph[u][v]["weight"] = max(graph[u][v]["weight"], edge.fused)
            graph[u][v]["decided_by"] |= set(edge.decided_by)
        else:
            graph.add_edge(u, v, weight=edge.fused, decided_by=set(edge.decided_by))
        if edge.near_duplicate:
            near.add_edge(edge.a, edge.b)
    group_of = {image: min(component) for component in nx.connected_components(near) for image in component}
    images = {image: index.image(image) for image in nodes}
    patterns = []
    for component in sorted(nx.connected_components(graph), key=lambda c: sorted(c)):
        parts = [component]
        if len({u[0] for u in component}) > COMMUNITY_ABOVE:
            subgraph = graph.subgraph(component)
            communities = nx.community.louvain_communities(subgraph, weight="weight", seed=SEED)
            if nx.community.modularity(subgraph, communities, weight="weight") >= MIN_MODULARITY:
                parts = communities
        for part in sorted(parts, key=lambda c: sorted(c)):
            pattern = _pattern(graph.subgraph(part), nodes, images, group_of)
            if pattern is not None:
                patterns.append(pattern)
    return sorted(patterns, key=lambda p: (p.kind != "repeat", -len(p.images), -p.strength,
                                           [str(m.image.path) for m in p.images]))


def _union_box(boxes) -> tuple[int, int, int, int]:
    """The smallest box (x0, y0, x1, y1) holding all of ``boxes``."""
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _pattern(part, nodes, images, group_of) -> Pattern | None:
    """One pattern from a subgraph of region nodes: each image once (its regions merged), near-duplicates
    folded onto the first of their group; None when it spans fewer than two images."""
    by_image: dict[int, list[EdgeRegion]] = {}
    for image, k in sorted(part.nodes):
        by_image.setdefault(image, []).append(nodes[image][k])
    if len(by_image) < 2:
        return None
    groups: dict[int, list[int]] = {}
    for image in sorted(by_image):
        groups.setdefault(group_of.get(image, image), []).append(image)
    members = []
    for group in groups.values():
        first = group[0]
        regions = by_image[first]
        cells = np.logical_or.reduce([r.cells for r in regions])
        members.append(PatternImage(images[first], _union_box([r.box for r in regions]), cells,
                                    [images[i] for i in group[1:]]))
    decided: dict[str, int] = {}
    for _, _, data in part.edges(data=True):
        for name in data["decided_by"]:
            decided[name] = decided.get(name, 0) + 1
    kind = "near-duplicates" if len(groups) == 1 else "repeat"
    strength = float(sum(data["weight"] for _, _, data in part.edges(data=True)))
    members.sort(key=lambda m: str(m.image.path))
    return Pattern(kind, strength, part.number_of_edges(), members, decided)
