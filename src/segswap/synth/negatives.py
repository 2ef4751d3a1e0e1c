"""Negative pairs drawn from a feature cache: image a of one synthetic pair with image b of another,
never two images made from a common photo. Training and validation draw them alike."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .cache import FeatureCache
from .reader import pasted_classes


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


def object_classes(cache: FeatureCache, indices: np.ndarray) -> dict[int, tuple[frozenset, frozenset]]:
    """Pair index → (classes of the objects pasted in a, in b); see :func:`~segswap.synth.reader.pasted_classes`."""
    indices = [int(i) for i in indices]
    return dict(zip(indices, pasted_classes([cache.pair_dirs[i] for i in indices])))


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
