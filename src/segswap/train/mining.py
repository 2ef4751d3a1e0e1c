"""Hard negatives: non-matching pairs on which the current model still predicts a shared region."""

from __future__ import annotations

import numpy as np
import torch

from ..synth.cache import FeatureCache
from ..synth.negatives import random_negatives


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
