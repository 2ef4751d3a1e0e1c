"""What runs on a Dask worker. Tasks carry paths, image ids, feature locations and small arrays; the
models are built once per worker process (a module-level cache keyed by how they are loaded) and kept
for every later task, never sent over the network."""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backbone import get_backbone
from ..collection.cosegment import make_masks
from ..collection.descriptor import regional_descriptors
from ..collection.features import extract_features
from ..collection.index import StagedShard
from ..collection.predictions import PairPrediction, predict_pairs
from ..collection.update import stage_features
from ..keypoints import get_matcher
from ..pair import load

#: (file, byte offset, (C, h, w)) of one image's float16 features in a shared folder.
FeatureLocation = tuple[str, int, tuple[int, int, int]]

_lock = threading.Lock()  # a worker may run several tasks at once (--nthreads > 1)
_matchers: dict[str, object] = {}


def cached_matcher(load_arguments: dict):
    """The matcher ``segswap.pair.load(**load_arguments)``, built on this worker's first task that needs it."""
    key = json.dumps(load_arguments, sort_keys=True, default=str)
    with _lock:
        if key not in _matchers:
            _matchers[key] = load(**load_arguments)
        return _matchers[key]


def index_chunk(root: str, backbone: str, size: int, runtime: str, items: list, staging: str,
                keypoints: tuple[str, dict] | None = None) -> StagedShard:
    """Features of ``items`` for an index: one staged shard (:func:`segswap.collection.update.stage_features`),
    with keypoints of ``keypoints`` (matcher name, settings) where given."""
    keypointer = None if keypoints is None else get_matcher(keypoints[0], **keypoints[1])
    return stage_features(Path(root), size, get_backbone(backbone, runtime), items, Path(staging), keypointer)


def read_features(location: FeatureLocation) -> np.ndarray:
    path, offset, shape = location
    return np.fromfile(path, dtype=np.float16, count=int(np.prod(shape)), offset=offset).reshape(shape)


def predict_chunk(load_arguments: dict, locations: dict[int, FeatureLocation], pairs: list[tuple[int, int]],
                  flip: bool, batch_size: int) -> list[PairPrediction]:
    """The pair model on ``pairs`` (image ids), their features read from the shared folder."""
    matcher = cached_matcher(load_arguments)
    features = {image: read_features(location) for image, location in locations.items()}
    return predict_pairs(matcher, features.__getitem__, pairs, flip=flip, batch_size=batch_size, show_progress=False)


@dataclass
class FeatureChunk:
    """Features of some images, written to one shard file in the shared folder."""

    paths: list[Path]  # the readable ones, in order
    sizes: list[tuple[int, int]]
    locations: list[FeatureLocation]
    descriptors: list[np.ndarray]  # R×C float32 regional descriptors, as co-segmentation computes them
    skipped: list[str]


def feature_chunk(load_arguments: dict, paths: list[Path], folder: str) -> FeatureChunk:
    """``extract_features`` of the matcher on ``paths``, written to a new file in ``folder`` (under a
    temporary name, then renamed: a retried task never meets half a file)."""
    matcher = cached_matcher(load_arguments)
    feats = extract_features(paths, matcher, skip_unreadable=True, show_progress=False)
    name = Path(folder) / uuid.uuid4().hex
    locations, offset = [], 0
    with open(name.with_suffix(".part"), "wb") as f:
        for block in feats.features:
            f.write(np.ascontiguousarray(block, dtype=np.float16).tobytes())
            locations.append((str(name.with_suffix(".f16")), offset, block.shape))
            offset += block.nbytes
        f.flush()
        os.fsync(f.fileno())
    os.replace(name.with_suffix(".part"), name.with_suffix(".f16"))
    return FeatureChunk(feats.paths, feats.sizes, locations, [regional_descriptors(f) for f in feats.features],
                        feats.skipped)


def mask_chunk(method: str, paths: list[Path], potentials: list[np.ndarray] | None) -> list[np.ndarray]:
    """Co-segmentation masks of some images (:func:`segswap.collection.cosegment.make_masks`)."""
    return make_masks(method, paths, potentials, show_progress=False)
