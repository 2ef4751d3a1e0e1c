"""Co-segmentation benchmarks: read any folder in the co-segmentation layout, run a method, score it.

Layout: ``ROOT/images/<group>/<stem>.<ext>`` and ``ROOT/groundtruth/<group>/<stem>.png`` holding 255 for
the group's object, 0 for background and 128 for pixels to ignore. Each method segments one whole group
at a time (co-segmentation methods need the group; per-image baselines simply ignore it).
:class:`CosegPairValidation` is training's quicker check on such a folder: a pair model on a few pairs
per group.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..collection.methods import COSEG_METHODS, DEFAULT_METHOD
from ..errors import SegswapError
from ..io import load_image
from ..io.paths import list_images
from ..models.outputs import cycle_consistent_mask, upsample_mask
from . import baselines
from .metrics import BACKGROUND, IGNORE, OBJECT, coseg_scores, image_scores

#: Long side of the images for the feature baselines: the size at which the shared reference facts
#: (shared/docs/reference.md, beside the repository) measured them.
FEATURE_SIZE = 448

GroupSegmenter = Callable[[list[Path]], list[np.ndarray]]


@dataclass(frozen=True)
class CosegItem:
    image: Path
    truth: Path


@dataclass(frozen=True)
class MethodOptions:
    """What a method may be configured with; each method uses only the options that concern it."""

    weights: Path | None = None
    learned: Path | None = None  # an index's learned/ folder (`segswap learn`), for the segswap pair model
    backbone: str | None = None
    size: int | None = None
    flip: bool = False
    top_k: int = 5
    show_progress: bool = False  # bars inside a group; how a method runs, not what it computes
    # A segswap.cluster.DaskEngine for the pair-model methods' features and pairs: again how, not what.
    engine: object = field(default=None, compare=False)


@dataclass(frozen=True)
class Method:
    description: str
    build: Callable[[MethodOptions], GroupSegmenter]  # loads models once, returns the group segmenter
    runs_on_cluster: bool = False  # uses MethodOptions.engine


def read_coseg_benchmark(root: Path, groups: list[str] | None = None) -> dict[str, list[CosegItem]]:
    """Groups (sorted, or in the order asked for) → their images with ground truth, sorted by name."""
    root = Path(root)
    image_root, truth_root = root / "images", root / "groundtruth"
    if not root.is_dir():
        raise SegswapError(f"{root}: no such folder")
    if not image_root.is_dir() or not truth_root.is_dir():
        raise SegswapError(f"{root}: not a co-segmentation benchmark (needs images/<group>/ and groundtruth/<group>/)")
    available = sorted(p.name for p in image_root.iterdir() if p.is_dir())
    if groups:
        unknown = [g for g in groups if g not in available]
        if unknown:
            raise SegswapError(f"{root}: no group {', '.join(unknown)}; groups: {', '.join(available)}")
    benchmark = {}
    for group in groups or available:
        images = list_images(image_root / group, recursive=False)
        if not images:
            raise SegswapError(f"{image_root / group}: no images")
        missing = [p.name for p in images if not (truth_root / group / f"{p.stem}.png").is_file()]
        if missing:
            raise SegswapError(f"{truth_root / group}: no ground truth for {', '.join(missing[:5])}"
                               + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        benchmark[group] = [CosegItem(p, truth_root / group / f"{p.stem}.png") for p in images]
    return benchmark


def read_truth(path: Path) -> np.ndarray:
    """A ground-truth mask as uint8 H×W holding only 255, 0 and 128."""
    try:
        truth = np.asarray(Image.open(path).convert("L"))
    except OSError as err:
        raise SegswapError(f"{path}: cannot read ground truth ({err})") from None
    unexpected = set(np.unique(truth).tolist()) - {OBJECT, BACKGROUND, IGNORE}
    if unexpected:
        raise SegswapError(f"{path}: ground truth may hold only {OBJECT}, {BACKGROUND} and {IGNORE}, "
                           f"found {sorted(unexpected)[:5]}")
    return truth


# -- methods ------------------------------------------------------------------------------------------
def _collection(method: str, model: str = "segswap") -> Callable[[MethodOptions], GroupSegmenter]:
    """`segswap cosegment --method METHOD` on each group, on ``model``'s pair predictions where it runs pairs."""
    def build(options: MethodOptions) -> GroupSegmenter:
        from ..collection.cosegment import cosegment_images, resolve_method
        from ..pair import load

        resolved = resolve_method(method)  # once, so a missing prior is noted once, not per group
        matcher = (load(model, options.weights, backbone=options.backbone, size=options.size, learned=options.learned)
                   if COSEG_METHODS[resolved].pairs else None)
        return lambda paths: cosegment_images(paths, matcher, top_k=options.top_k, flip=options.flip,
                                              show_progress=options.show_progress, method=resolved,
                                              engine=options.engine)
    return build


def _per_image(segment: Callable[[np.ndarray], np.ndarray]) -> Callable[[MethodOptions], GroupSegmenter]:
    return lambda options: lambda paths: [segment(load_image(p)) for p in paths]


def _centre_box(image: np.ndarray) -> np.ndarray:
    return baselines.centre_box(*image.shape[:2])


def _features(refine: bool) -> Callable[[MethodOptions], GroupSegmenter]:
    def build(options: MethodOptions) -> GroupSegmenter:
        from ..backbone import DEFAULT_BACKBONE, get_backbone

        backbone = get_backbone(options.backbone or DEFAULT_BACKBONE)
        size = options.size or FEATURE_SIZE
        return lambda paths: baselines.feature_cosegment([load_image(p) for p in paths], backbone, size, refine)
    return build


def _saliency_grabcut(options: MethodOptions) -> GroupSegmenter:
    """The objectness prior's masks (`segswap cosegment --method saliency`) refined by GrabCut."""
    from ..collection.cosegment import make_masks

    def segment(paths: list[Path]) -> list[np.ndarray]:
        masks = [m > 0 for m in make_masks("saliency", paths, None, options.show_progress)]
        return [baselines.grabcut_refine(load_image(p), m) for p, m in zip(paths, masks)]
    return segment


def _semantic(with_saliency: bool) -> Callable[[MethodOptions], GroupSegmenter]:
    def build(options: MethodOptions) -> GroupSegmenter:
        from ..backbone.objectness import get_prior
        from ..collection.semantic import semantic_cosegment

        prior = get_prior()
        return lambda paths: semantic_cosegment([load_image(p) for p in paths], prior, with_saliency=with_saliency)
    return build


#: The methods of `segswap eval coseg`: `segswap cosegment`'s (:data:`~segswap.collection.methods.COSEG_METHODS`,
#: read when a method is looked up, so a registered one is here too), the same pipeline on the other pair
#: models, and baselines.
BASELINES: dict[str, Method] = {
    "ncnet": Method("`segswap cosegment --method segswap` on the NC-Net variant's pair predictions",
                    _collection("segswap", "ncnet"), runs_on_cluster=True),
    "macosnet": Method("`segswap cosegment --method segswap` on MaCoSNet's pair predictions (masks, warp)",
                       _collection("segswap", "macosnet"), runs_on_cluster=True),
    "correlation": Method("`segswap cosegment --method segswap` on the training-free backbone correlation "
                          "(no transformer)", _collection("segswap", "correlation"), runs_on_cluster=True),
    "centre-box": Method("the centred box covering 2/3 of each side (no image content)", _per_image(_centre_box)),
    "grabcut-centre": Method("GrabCut seeded with the centre box", _per_image(baselines.grabcut_centre)),
    "features": Method("zero-shot: backbone tokens scored by their best matches in the group's other images, "
                       "per-image mean removed, Otsu threshold", _features(refine=False)),
    "features-grabcut": Method("the 'features' masks refined by GrabCut", _features(refine=True)),
    "saliency-grabcut": Method("`segswap cosegment --method saliency`'s masks refined by GrabCut", _saliency_grabcut),
    "semantic": Method("semantic commonness alone: DINOv2 part clusters over the group, each part scored by its "
                       "saliency across the group, Otsu level", _semantic(with_saliency=False)),
    "saliency-semantic": Method("the mean of the saliency map and the semantic commonness, Otsu level",
                                _semantic(with_saliency=True)),
}


def methods() -> dict[str, Method]:
    """Every method of `segswap eval coseg`, by name: `segswap cosegment`'s first (the default first), then
    :data:`BASELINES`."""
    return {**{name: Method(f"`segswap cosegment --method {name}`: {spec.description}", _collection(name),
                            runs_on_cluster=spec.pairs)
               for name, spec in COSEG_METHODS.items()}, **BASELINES}


def build_method(name: str, options: MethodOptions) -> GroupSegmenter:
    known = methods()
    if name not in known:
        raise SegswapError(f"unknown method {name!r}; choose from {', '.join(known)}")
    if options.engine is not None:
        check_cluster_method(name)
    return known[name].build(options)


def check_cluster_method(name: str) -> None:
    """Refuse a method that cannot use a cluster when one was asked for (unknown names pass: the run
    refuses them)."""
    known = methods()
    if name in known and not known[name].runs_on_cluster:
        raise SegswapError(f"method {name!r} does not run on a cluster (--scheduler/--workers); these do: "
                           f"{', '.join(n for n, m in known.items() if m.runs_on_cluster)}")


# -- runner -------------------------------------------------------------------------------------------
def evaluate_coseg(root: Path, method: str = DEFAULT_METHOD, groups: list[str] | None = None,
                   options: MethodOptions = MethodOptions(), show_progress: bool = True) -> dict:
    """Run ``method`` on every group of the benchmark at ``root`` and score it.

    Returns ``groups`` (per group ``P``, ``J``, ``n``), ``mean`` (``P``, ``J``: the plain mean over
    groups, as the papers' tables report) and what was run (``method``, ``options``, ``seconds``).
    """
    benchmark = read_coseg_benchmark(root, groups)
    segment = build_method(method, replace(options, show_progress=show_progress))  # bars within each group
    start = time.perf_counter()
    rows = {}
    for group, items in tqdm(benchmark.items(), desc=f"coseg {method}", unit="group", disable=not show_progress):
        predictions = segment([item.image for item in items])
        truths = [read_truth(item.truth) for item in items]
        for item, pred, truth in zip(items, predictions, truths):
            if pred.shape[:2] != truth.shape:
                raise SegswapError(f"{item.image}: mask is {pred.shape[1]}×{pred.shape[0]} px but its ground truth "
                                   f"is {truth.shape[1]}×{truth.shape[0]}")
        scores = coseg_scores(predictions, truths)
        rows[group] = {"P": scores["P"], "J": scores["J"], "n": scores["n"]}
    mean = {key: _mean([row[key] for row in rows.values()]) for key in ("P", "J")}
    return {
        "method": method,
        "root": str(root),
        # Not asdict(): it deep-copies every value, the engine (a live Dask client) included.
        "options": {f.name: (str(v) if isinstance(v, Path) else v) for f in fields(options)
                    if f.name not in ("show_progress", "engine") for v in [getattr(options, f.name)]},
        "groups": rows,
        "mean": mean,
        "seconds": time.perf_counter() - start,
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


class CosegPairValidation:
    """Pairwise validation on a co-segmentation benchmark (e.g. ``msrc_coseg``): in each group, the
    first ``pairs_per_group`` consecutive image pairs (by name); each pair's cycle-consistent masks,
    upsampled to the images, are scored against both images' ground truth (J, ignore label excluded).

    Features are computed once, so a validation costs only the model's forward passes.
    """

    def __init__(self, root, backbone: str, size: int, pairs_per_group: int = 6):
        from ..backbone import backbone_tokens, get_backbone

        extractor = get_backbone(backbone)
        self.pairs: dict[str, list[tuple[int, int]]] = {}
        self.features, self.truth = [], []
        for group, items in read_coseg_benchmark(root).items():
            chosen = items[: pairs_per_group + 1]
            first = len(self.features)
            for item in chosen:
                self.features.append(backbone_tokens(extractor, load_image(item.image), size)[None])
                self.truth.append(read_truth(item.truth))
            self.pairs[group] = [(first + k, first + k + 1) for k in range(len(chosen) - 1)]

    @torch.inference_mode()
    def __call__(self, model) -> dict:
        """Mean J per group and ``mean`` over groups (fractions)."""
        model.eval()
        per_group = {}
        for group, pairs in self.pairs.items():
            scores = []
            for i, j in pairs:
                out = model({"feats_a": self.features[i], "feats_b": self.features[j]})
                for k, mask, other, flow in ((i, "mask_a", "mask_b", "flow_ab"), (j, "mask_b", "mask_a", "flow_ba")):
                    cycle = cycle_consistent_mask(out[mask], out[other], out[flow])[0]
                    h, w = self.truth[k].shape
                    _, jaccard = image_scores(upsample_mask(cycle, (w, h)), self.truth[k])
                    if jaccard is not None:
                        scores.append(jaccard)
            per_group[group] = float(np.mean(scores)) if scores else float("nan")
        per_group["mean"] = float(np.nanmean(list(per_group.values())))
        return per_group
