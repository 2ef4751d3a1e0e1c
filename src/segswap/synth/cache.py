"""Backbone features of synthetic pairs, computed once and stored as float16 memory-mapped shards.

The backbone is frozen, so training reads features, not pixels. A cache folder holds::

    cache.json                 backbone, size, grid, shard list
    shard-00000/feats_a.npy    n×C×h×w float16   (memory-mapped when read)
                feats_b.npy    n×C×h×w float16
                mask_a.npy     n×h×w   float32   ground truth from gt.npz
                mask_b.npy     n×h×w   float32
                flow_ab.npy    n×h×w×2 float32
                flow_ba.npy    n×h×w×2 float32
                ids.json       the pair ids, in order
                content.json   per pair, the source photos seen in a and in b (from meta.json)

Each shard is written to a temporary folder and renamed into place, so a killed run loses at most
the shard in progress and a new run carries on after the last complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..backbone import get_backbone
from ..errors import SegswapError
from ..io import resize_for_model
from ..io.files import write_bytes_atomic
from .reader import TRUTH_KEYS, positive_pairs, read_images, read_truth, source_photos

ARRAYS = ("feats_a", "feats_b") + TRUTH_KEYS
SHARD_SIZE = 256


def cache_dir_for(pairs_dir: Path, backbone: str, size: int) -> Path:
    """Where the features of a synth folder are cached: inside it, one folder per backbone and size."""
    return Path(pairs_dir) / f"features-{backbone}-{size}"


def build_cache(pairs_dir: Path, backbone: str, size: int, batch_size: int = 16, show_progress: bool = True) -> Path:
    """Compute (or finish computing) the feature cache of the pairs in ``pairs_dir``; return its folder."""
    pairs_dir = Path(pairs_dir)
    cache_dir = cache_dir_for(pairs_dir, backbone, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    pairs = positive_pairs(pairs_dir)
    if not pairs:
        raise SegswapError(f"{pairs_dir}: no complete positive pairs")
    index_path = cache_dir / "cache.json"
    index = {"backbone": backbone, "size": size, "grid": None, "shards": []}
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        index["shards"] = list(dict.fromkeys(index["shards"]))  # a cache.json of an older version may repeat one
    cached = {i for s in index["shards"] for i in json.loads((cache_dir / s / "ids.json").read_text())}
    # By id, not by position: a folder grown by a later `segswap synth` adds pairs anywhere in the manifest.
    todo = [e for e in pairs if e["id"] not in cached]
    if not todo:
        return cache_dir
    extractor = get_backbone(backbone)
    # New shards take numbers after every recorded one: appending never overwrites. A shard a killed run
    # wrote but did not record gets the same number again and is replaced, so none is listed twice.
    first = 1 + max((int(s.removeprefix("shard-")) for s in index["shards"]), default=-1)
    progress = tqdm(total=len(pairs), initial=len(pairs) - len(todo), desc=f"caching {pairs_dir.name}", unit="pair",
                    disable=not show_progress)
    for number, start in enumerate(range(0, len(todo), SHARD_SIZE), first):
        chunk = todo[start:start + SHARD_SIZE]
        name = f"shard-{number:05d}"
        arrays = _features_of(pairs_dir, chunk, extractor, size, batch_size, progress)
        index["grid"] = list(arrays["mask_a"].shape[1:3])
        _write_shard(cache_dir / name, arrays, [e["id"] for e in chunk], [source_photos(pairs_dir / e["id"]) for e in chunk])
        index["shards"].append(name)
        write_bytes_atomic(index_path, json.dumps(index, indent=1).encode())
    progress.close()
    return cache_dir


def _features_of(pairs_dir: Path, chunk, extractor, size: int, batch_size: int, progress) -> dict:
    out = {k: [] for k in ARRAYS}
    for start in range(0, len(chunk), batch_size):
        batch = chunk[start:start + batch_size]
        pair_images = [read_images(pairs_dir / e["id"]) for e in batch]
        for k, side in enumerate(("a", "b")):
            images = [resize_for_model(pair[k], size) for pair in pair_images]
            if len({im.shape for im in images}) != 1:
                raise SegswapError("synthetic pairs of one cache must share one image size")
            tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
            out[f"feats_{side}"].append(extractor(tensor).numpy().astype(np.float16))
        for e in batch:
            for key, value in read_truth(pairs_dir / e["id"]).items():
                out[key].append(value[None])
        progress.update(len(batch))
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    if arrays["feats_a"].shape[2:] != arrays["mask_a"].shape[1:]:
        raise SegswapError(f"feature grid {arrays['feats_a'].shape[2:]} differs from the ground-truth grid "
                           f"{arrays['mask_a'].shape[1:]}: cache at the size the pairs were made at (--size)")
    return arrays


def _write_shard(path: Path, arrays: dict, ids: list[str], content: list) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    tmp.mkdir()
    try:
        for key, value in arrays.items():
            np.save(tmp / f"{key}.npy", value)
        (tmp / "ids.json").write_text(json.dumps(ids))
        (tmp / "content.json").write_text(json.dumps(content))
        if path.exists():  # a shard written but not yet recorded in cache.json by a killed run
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


class FeatureCache:
    """Read side: the shards of one or more caches memory-mapped, indexed as one sequence of pairs."""

    def __init__(self, roots):
        self.shards, self.ids, self.pair_dirs, self.content, grids = [], [], [], [], set()
        for root in map(Path, roots):
            index_path = root / "cache.json"
            if not index_path.is_file():
                raise SegswapError(f"{root}: not a feature cache (no cache.json)")
            index = json.loads(index_path.read_text())
            grids.add(tuple(index["grid"]))
            for s in dict.fromkeys(index["shards"]):
                self.shards.append({k: np.load(root / s / f"{k}.npy", mmap_mode="r") for k in ARRAYS})
                ids = json.loads((root / s / "ids.json").read_text())
                self.ids += [f"{root.parent.name}/{i}" for i in ids]
                self.pair_dirs += [root.parent / i for i in ids]
                self.content += [tuple(frozenset(side) for side in c) for c in json.loads((root / s / "content.json").read_text())]
        if len(grids) > 1:
            raise SegswapError(f"feature caches with different grids cannot be mixed: {sorted(grids)}")
        self.offsets = np.cumsum([0] + [len(s["mask_a"]) for s in self.shards])
        self.channels = int(self.shards[0]["feats_a"].shape[1]) if self.shards else 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def shares_content(self, i: int, j: int) -> bool:
        """Whether image a of pair i and image b of pair j were made from a common photo."""
        return bool(self.content[i][0] & self.content[j][1])

    def get(self, indices, keys=ARRAYS) -> dict:
        """Pairs ``indices`` as float32 tensors, keyed like the model's inputs and targets."""
        rows = {k: [] for k in keys}
        for i in indices:
            s = int(np.searchsorted(self.offsets, i, side="right") - 1)
            shard, j = self.shards[s], int(i - self.offsets[s])
            for k in keys:
                rows[k].append(np.asarray(shard[k][j], dtype=np.float32))
        return {k: torch.from_numpy(np.stack(v)) for k, v in rows.items()}
