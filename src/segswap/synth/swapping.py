"""Making one training pair by segment swapping, from its own random generator alone.

Design (documented in docs/synth.md): both images are composites. The same one or two object
segments, each with its own placement per image, are blended into two *different* background crops,
so the only thing the two images share is the objects: a model cannot match backgrounds, and both
images carry blending seams, so a seam is no cue either. Image b may get a thin-plate-spline warp;
either or both may be restyled, and one of them may then be put under a condition (night, haze, an
engraving...; :mod:`segswap.synth.conditions`). A negative pair puts objects of two different source images into the
two images: same kind of content, nothing shared.
"""

from __future__ import annotations

import time
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import ImageError
from ..io import load_image
from . import compose, conditions, geometry, style
from .segments import Segment, SourceImage, render_mask
from .truth import GroundTruth, ImageGeometry, ground_truth

STAGES = ("segment", "warp", "blend", "style", "condition", "truth")


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a pair looks like (stored in OUT/config.json)."""

    size: int = 480
    stride: int = 16
    blend: str = "poisson"  # poisson (normal or mixed per object), normal, mixed, copy
    style: bool = True
    negatives: float = 0.0
    two_objects: float = 0.5
    edge_cut: float = 0.2
    tps: float = 0.5
    min_cells: int = 9
    max_attempts: int = 25
    #: Condition names (segswap.synth.conditions) one image of a pair may be put under, and the
    #: fraction of pairs that get one (image a or b at random).
    conditions: tuple[str, ...] = ()
    condition_rate: float = 0.5


@dataclass
class Pair:
    kind: str
    a: np.ndarray
    b: np.ndarray
    truth: GroundTruth
    meta: dict


@dataclass
class Sources:
    """What a worker draws from: segment sources, background photos, style images (all paths)."""

    images: list[SourceImage]
    backgrounds: list[str]
    styles: list[str]


class StageTimer:
    """Wall time spent per generation stage, summed over pairs."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


class ImageCache:
    """Recently decoded images (up to ``budget`` bytes), optionally shrunk to a long side of ``max_side``.

    Decoding is the largest cost after blending when the cache is too small for the source folders.
    """

    def __init__(self, budget: int = 512 * 2**20):
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[tuple[str, int | None], tuple[np.ndarray, float]] = OrderedDict()

    def get(self, path: str, max_side: int | None = None) -> tuple[np.ndarray, float]:
        key = (path, max_side)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        image = load_image(path)
        scale = 1.0
        if max_side is not None and max(image.shape[:2]) > max_side:
            scale = max_side / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self.items[key] = (image, scale)
        self.used += image.nbytes
        while self.used > self.budget and len(self.items) > 1:
            self.used -= self.items.popitem(last=False)[1][0].nbytes
        return image, scale


@dataclass
class _Object:
    label: int
    segment: Segment
    image: np.ndarray  # crop of the source image around the segment
    mask: np.ndarray  # uint8 0/255, dilated
    centre: tuple[float, float]  # bbox centre in crop pixels
    box: tuple[float, float]  # bbox width, height
    dilation: int


@dataclass
class _Composite:
    canvas: np.ndarray
    geometry: ImageGeometry
    pasted: list[tuple[compose.WarpedObject, str]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


class PairMaker:
    def __init__(self, sources: Sources, settings: Settings, seed: int):
        self.sources = sources
        self.settings = settings
        self.seed = seed
        self.cache = ImageCache()
        self.timer = StageTimer()
        self.margin = geometry.canvas_margin(settings.size)
        self.canvas_side = settings.size + 2 * self.margin
        self.style_kinds = style.available_kinds(bool(sources.styles))

    def make(self, index: int) -> tuple[Pair | None, list[str]]:
        """Pair number ``index`` (or None if every attempt failed) and the warnings met on the way."""
        s = self.settings
        rng = np.random.default_rng([self.seed, index])
        negative = bool(rng.random() < s.negatives)
        warnings, rejected = [], []
        for attempt in range(s.max_attempts):
            try:
                pair = self._attempt(rng, negative)
            except ImageError as err:  # a file that went bad after the scan
                warnings.append(f"pair {index}: {err}")
                rejected.append("unreadable image")
                continue
            if isinstance(pair, str):
                rejected.append(pair)
                continue
            pair.meta = {"index": index, "seed": self.seed, "kind": pair.kind, "size": s.size, "stride": s.stride,
                         "attempt": attempt, "rejected": rejected, **pair.meta}
            if s.conditions:
                with self.timer.stage("condition"):
                    pair.meta["condition"] = self._condition(index, pair)
            return pair, warnings
        warnings.append(f"pair {index}: no valid pair in {s.max_attempts} attempts ({', '.join(sorted(set(rejected)))})")
        return None, warnings

    def _attempt(self, rng: np.random.Generator, negative: bool) -> Pair | str:
        """One try; a string says why it was rejected."""
        s = self.settings
        images = self.sources.images
        with self.timer.stage("segment"):
            first = int(rng.integers(len(images)))
            if negative:
                if len(images) < 2:
                    return "a negative needs two source images"
                second = (first + 1 + int(rng.integers(len(images) - 1))) % len(images)
                objects_a = self._objects(rng, images[first])
                objects_b = self._objects(rng, images[second])
            else:
                objects_a = objects_b = self._objects(rng, images[first])
        with self.timer.stage("warp"):
            source_a = images[first].path
            source_b = images[second].path if negative else source_a
            own = {source_a, source_b}
            bg_a = self._background_index(rng, own, set())
            if bg_a is None:
                return "no background other than the object's own image"
            bg_b = self._background_index(rng, own, {self.sources.backgrounds[bg_a]})
            a = self._compose(rng, source_a, objects_a, bg_a, tps=False)
            b = self._compose(rng, source_b, objects_b, bg_b, tps=True)
        with self.timer.stage("truth"):
            if negative:
                truth, cells = _empty_truth(s.size, s.stride), (0, 0)
            else:
                truth = ground_truth(a.geometry, b.geometry, s.stride)
                cells = truth.cells()
                if min(cells) < s.min_cells:
                    return f"fewer than {s.min_cells} matching cells"
        with self.timer.stage("blend"):
            for composite in (a, b):
                for obj, mode in composite.pasted:
                    compose.blend(composite.canvas, obj, mode)
        with self.timer.stage("warp"):
            image_a = compose.finish(a.canvas, a.geometry.warp)
            image_b = compose.finish(b.canvas, b.geometry.warp)
        with self.timer.stage("style"):
            image_a, image_b = self._style(rng, image_a, image_b, a.meta, b.meta)
        meta = {"a": a.meta, "b": b.meta, "cells": {"a": cells[0], "b": cells[1]}}
        return Pair("negative" if negative else "positive", image_a, image_b, truth, meta)

    def _objects(self, rng: np.random.Generator, source: SourceImage) -> list[_Object]:
        draw = rng.random()
        count = 2 if len(source.segments) >= 2 and draw < self.settings.two_objects else 1
        chosen = rng.choice(len(source.segments), size=count, replace=False)
        image, _ = self.cache.get(source.path)
        return [_cut_object(image, source.segments[int(k)], label) for label, k in enumerate(chosen, 1)]

    def _background_index(self, rng: np.random.Generator, avoid: set[str], rather_not: set[str]) -> int | None:
        """A background that is never in ``avoid`` and, if the photos allow, not in ``rather_not``."""
        photos = self.sources.backgrounds
        candidates = [i for i, p in enumerate(photos) if p not in avoid | rather_not]
        candidates = candidates or [i for i, p in enumerate(photos) if p not in avoid]
        return candidates[int(rng.integers(len(candidates)))] if candidates else None

    def _compose(self, rng: np.random.Generator, source: str, objects: list[_Object], background: int,
                 tps: bool) -> _Composite:
        s = self.settings
        path = self.sources.backgrounds[background]
        photo, scale = self.cache.get(path, max_side=2 * self.canvas_side)
        h, w = photo.shape[:2]
        crop = compose.sample_crop(rng, (h / scale, w / scale))
        canvas = compose.render_background(photo, scale, crop, self.canvas_side)
        labels = np.zeros((self.canvas_side, self.canvas_side), np.uint8)
        matrices, pasted, described = {}, [], []
        order = [int(i) for i in rng.permutation(len(objects))]
        for i in order:
            obj = objects[i]
            placement = geometry.sample_placement(rng, obj.box, s.size, s.edge_cut)
            mode = compose.sample_blend(rng, s.blend)
            matrix = placement.matrix(obj.centre, self.margin)
            warped = compose.warp_object(obj.image, obj.mask, matrix, self.canvas_side)
            described.append({"label": obj.label, "segment": obj.segment.uid, "class": obj.segment.label, "dilation": obj.dilation,
                              "placement": placement.as_dict(), "blend": mode, "on_canvas": warped is not None})
            if warped is None:
                continue
            compose.mark(labels, obj.label, warped)
            matrices[obj.label] = matrix
            pasted.append((warped, mode))
        warp_meta = None
        warp = geometry.FrameWarp.identity(s.size, self.margin)
        if tps and rng.random() < s.tps:
            grid = geometry.TPS_GRIDS[int(rng.integers(len(geometry.TPS_GRIDS)))]
            limit = geometry.TPS_MOVE / grid
            moves = rng.uniform(-limit, limit, size=(grid * grid, 2))
            tps_warp = geometry.FrameWarp.thin_plate(s.size, self.margin, grid, moves)
            folds = tps_warp.folds()
            warp = warp if folds else tps_warp
            warp_meta = {"grid": grid, "moves": moves.tolist(), "applied": not folds}
        meta = {
            "source": source,
            "background": {"path": path, **crop.as_dict()},
            "objects": described,
            "paste_order": [objects[i].label for i in order],
            "tps": warp_meta,
            "style": None,
        }
        return _Composite(canvas, ImageGeometry(labels, warp, matrices), pasted, meta)

    def _style(self, rng: np.random.Generator, image_a: np.ndarray, image_b: np.ndarray,
               meta_a: dict, meta_b: dict) -> tuple[np.ndarray, np.ndarray]:
        if not self.settings.style:
            return image_a, image_b
        target = style.TARGETS[int(rng.choice(len(style.TARGETS), p=style.TARGET_WEIGHTS))]
        pool = [self.cache.get(p, max_side=512)[0] for p in self.sources.styles]
        out = []
        for name, image, meta in (("a", image_a, meta_a), ("b", image_b, meta_b)):
            if target in (name, "both"):
                kind = self.style_kinds[int(rng.integers(len(self.style_kinds)))]
                image, meta["style"] = style.apply_style(image, kind, rng, pool)
            out.append(image)
        return out[0], out[1]


    def _condition(self, index: int, pair: Pair) -> dict | None:
        """Put image a or b of ``pair`` under one of the settings' conditions (or neither); returns what
        was done. Its own generator: the composite and styles are what the seed makes without conditions,
        and one pair index gets the same side and draws under every condition (a benchmark compares
        conditions on the same pairs)."""
        rng = np.random.default_rng([self.seed, index, conditions.CONDITION_STREAM])
        applies = rng.random() < self.settings.condition_rate
        side = "ab"[int(rng.integers(2))]
        name = self.settings.conditions[int(rng.integers(len(self.settings.conditions)))]
        if not applies:
            return None
        image, params = conditions.apply_condition(getattr(pair, side), name, rng)
        setattr(pair, side, image)
        return {"image": side, **params}


def _cut_object(image: np.ndarray, segment: Segment, label: int) -> _Object:
    """Crop the source image around a segment and dilate its mask (as the authors do with COCO)."""
    mask = render_mask(segment, image.shape[:2])
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        raise ImageError(f"segment {segment.uid} is empty on its image")
    dilation = int(np.clip(round(0.02 * max(w, h)), 1, 6))
    pad = dilation + 2
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(image.shape[1], x + w + pad), min(image.shape[0], y + h + pad)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1, 2 * dilation + 1))
    crop_mask = cv2.dilate(mask[y0:y1, x0:x1], kernel)
    centre = (x + (w - 1) / 2 - x0, y + (h - 1) / 2 - y0)
    return _Object(label, segment, image[y0:y1, x0:x1], crop_mask, centre, (float(w), float(h)), dilation)


def _empty_truth(size: int, stride: int) -> GroundTruth:
    t = size // stride
    none = np.zeros((size, size), bool)
    zeros = np.zeros((t, t), np.float32)
    flow = np.zeros((t, t, 2), np.float32)
    return GroundTruth(none, none.copy(), zeros, zeros.copy(), flow, flow.copy())
