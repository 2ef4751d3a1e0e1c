"""A pair model on synthetic pairs it was not trained on: mask IoU and correspondence error in cells.

The pairs are `segswap synth` folders made with another seed than the training pairs (or any
held-out folder); their features are cached beside them, as `segswap train` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SegswapError
from ..models.outputs import FlipAveraged
from ..train.cache import FeatureCache, build_cache
from ..train.validate import validate_synthetic


def pairs_size(pairs_dirs) -> int:
    """The image size the folders' pairs were made at (``config.json``), the same for all of them."""
    sizes = set()
    for folder in map(Path, pairs_dirs):
        config = folder / "config.json"
        if not config.is_file():
            raise SegswapError(f"{folder}: no config.json (is it a `segswap synth` output folder?)")
        sizes.add(int(json.loads(config.read_text())["settings"]["size"]))
    if len(sizes) != 1:
        raise SegswapError(f"the pair folders were made at different sizes ({sorted(sizes)}); evaluate them one size at a time")
    return sizes.pop()


def evaluate_synthetic(pairs_dirs, matcher, seed: int = 0, show_progress: bool = True, flip: bool = False) -> dict:
    """The metrics of :func:`~segswap.train.validate.validate_synthetic` over every pair of the folders,
    with as many negatives (image a of one pair, image b of another); the pairs must have been made at
    the matcher's input size. ``flip``: average with the mirrored pair (:class:`~segswap.models.outputs.FlipAveraged`)."""
    caches = [build_cache(Path(p), matcher.backbone.name, matcher.size, show_progress=show_progress) for p in pairs_dirs]
    cache = FeatureCache(caches)
    model = FlipAveraged(matcher.model) if flip else matcher.model
    metrics = validate_synthetic(model, cache, np.arange(len(cache)), seed)
    return {"pairs": len(cache), "folders": [str(p) for p in pairs_dirs], "model": matcher.name,
            "weights": matcher.weights, "size": matcher.size, "flip": flip,
            **{key.removeprefix("val_"): value for key, value in metrics.items()}}
