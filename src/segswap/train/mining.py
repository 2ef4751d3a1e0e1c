"""Hard negatives: non-matching pairs on which the current model still predicts a shared region."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from .cache import FeatureCache


def random_negatives(rng: np.random.Generator, pool: np.ndarray, count: int, cache: FeatureCache | None = None) -> np.ndarray:
    """``count`` pairs (i, j), i ≠ j, of pool members: image a of pair i with image b of pair j; with a
    ``cache``, pairs whose images were made from a common photo are redrawn (they share content)."""
    i = rng.choice(pool, size=count)
    j = rng.choice(pool, size=count)

    def clashes():
        same = i == j
        if cache is not None:
            same |= np.array([cache.shares_content(int(x), int(y)) for x, y in zip(i, j)], dtype=bool)
        return same

    clash = clashes()
    for _ in range(100):
        if not clash.any():
            break
        j[clash] = rng.choice(pool, size=int(clash.sum()))
        clash = clashes()
    return np.stack([i, j], axis=1)[~clash]


@torch.inference_mode()
def mine_hard_negatives(model, cache: FeatureCache, pool_indices: np.ndarray, rng: np.random.Generator,
                        conf: dict, batch_size: int = 32) -> np.ndarray:
    """Draw ``conf["pool"]`` random (a_i, b_j) pairs, i ≠ j, and keep those whose predicted masks
    average above ``conf["threshold"]`` in either image → K×2 array of (i, j)."""
    candidates = random_negatives(rng, pool_indices, conf["pool"], cache)
    kept = []
    for start in range(0, len(candidates), batch_size):
        chunk = candidates[start:start + batch_size]
        fa = cache.get(chunk[:, 0], keys=("feats_a",))["feats_a"]
        fb = cache.get(chunk[:, 1], keys=("feats_b",))["feats_b"]
        out = model({"feats_a": fa, "feats_b": fb})
        area = torch.maximum(out["mask_a"].flatten(1).mean(1), out["mask_b"].flatten(1).mean(1))
        kept.append(chunk[(area > conf["threshold"]).numpy()])
    return np.concatenate(kept) if kept else np.zeros((0, 2), dtype=np.int64)


def object_classes(cache: FeatureCache, indices: np.ndarray) -> dict[int, tuple[frozenset, frozenset]]:
    """Pair index → (classes of the objects pasted in a, in b), from each pair's meta.json. Older synth
    folders do not record ``class``: for YOLO-seg sources it is read back from the label line the
    segment id names. Unknown classes are left out."""
    labels_cache: dict[Path, list[str]] = {}

    def class_of(side: dict, obj: dict) -> str:
        if obj.get("class"):
            return obj["class"]
        image, _, line = obj["segment"].rpartition(":")
        source = Path(side.get("source") or "")
        if not line.isdigit() or "images" not in source.parts:
            return ""
        parts = list(source.parts)
        parts[len(parts) - 1 - parts[::-1].index("images")] = "labels"
        label_file = Path(*parts).with_suffix(".txt")
        if label_file not in labels_cache:
            labels_cache[label_file] = label_file.read_text().splitlines() if label_file.is_file() else []
        lines = labels_cache[label_file]
        number = int(line)
        return lines[number - 1].split()[0] if 0 < number <= len(lines) and lines[number - 1].strip() else ""

    classes = {}
    for i in map(int, indices):
        meta_path = cache.pair_dirs[i] / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        classes[i] = tuple(frozenset(c for c in (class_of(meta[s], o) for o in meta[s].get("objects", []) if o.get("on_canvas", True)) if c)
                           if s in meta else frozenset() for s in ("a", "b"))
    return classes


def same_class_negatives(rng: np.random.Generator, classes: dict, count: int, cache: FeatureCache) -> np.ndarray:
    """``count`` hard negatives (i, j): image a of pair i and image b of pair j show different objects
    of a common class (e.g. two different dogs, pasted the same way), made from no common photo.
    Fewer (possibly none) when the pool has no such pairs."""
    by_class_a, by_class_b = defaultdict(list), defaultdict(list)
    for i, (in_a, in_b) in classes.items():
        for c in in_a:
            by_class_a[c].append(i)
        for c in in_b:
            by_class_b[c].append(i)
    shared = sorted(c for c in by_class_a if len(set(by_class_a[c]) | set(by_class_b.get(c, []))) > 1 and c in by_class_b)
    pairs = []
    for _ in range(count * 20):
        if len(pairs) == count or not shared:
            break
        c = shared[int(rng.integers(len(shared)))]
        i = int(rng.choice(by_class_a[c]))
        j = int(rng.choice(by_class_b[c]))
        if i != j and not cache.shares_content(i, j):
            pairs.append((i, j))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
