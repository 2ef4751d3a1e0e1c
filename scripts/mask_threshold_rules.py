"""Mask IoU of the shipped SegSwap weights on synthetic pairs under other binarisation rules: fixed
thresholds, and cells above a fraction of the image's own maximum (with a floor on that maximum).

    .venv/bin/python scripts/mask_threshold_rules.py W/test_coco320 W/test_unsup320

Negatives are those of `segswap eval synthetic` (seed 0): image a of one pair with image b of
another made from other photos; "neg area" is the share of a's cells marked on them.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import segswap
from segswap.train.cache import FeatureCache, build_cache
from segswap.train.mining import random_negatives


def predictions(model, cache: FeatureCache, batch_size: int = 32, seed: int = 0):
    indices = np.arange(len(cache))
    # the negatives validate_synthetic (and so `segswap eval synthetic`) draws for this seed
    pairs = random_negatives(np.random.default_rng([seed, 777]), indices, len(indices), cache)
    probs, truths, negatives = [], [], []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = cache.get(indices[start:start + batch_size])
            out = model({"feats_a": batch["feats_a"], "feats_b": batch["feats_b"]})
            for side in "ab":
                probs.append(out[f"mask_{side}"].flatten(1))
                truths.append(batch[f"mask_{side}"].flatten(1) > 0.5)
            chunk = pairs[start:start + batch_size]
            fa = cache.get(chunk[:, 0], keys=("feats_a",))["feats_a"]
            fb = cache.get(chunk[:, 1], keys=("feats_b",))["feats_b"]
            negatives.append(model({"feats_a": fa, "feats_b": fb})["mask_a"].flatten(1))
    return torch.cat(probs), torch.cat(truths), torch.cat(negatives)


def main() -> None:
    matcher = segswap.load()
    cache = FeatureCache([build_cache(p, matcher.backbone.name, 320, show_progress=False) for p in sys.argv[1:]])
    probs, truths, negatives = predictions(matcher.model.eval(), cache)
    rules = [(f"fixed {t}", lambda p, t=t: p > t) for t in (0.5, 0.4, 0.3)]
    for fraction in (0.3, 0.5, 0.7):
        for floor in (0.2, 0.3, 0.5):
            rules.append((f"> {fraction} × max, max > {floor}",
                          lambda p, a=fraction, f=floor: (p > a * p.amax(1, keepdim=True)) & (p.amax(1, keepdim=True) > f)))
    print("| rule | mask IoU | neg area |\n|---|---|---|")
    for name, rule in rules:
        pred = rule(probs)
        iou = ((pred & truths).sum(1) / (pred | truths).sum(1).clamp(min=1)).float().mean().item()
        print(f"| {name} | {iou:.3f} | {rule(negatives).float().mean().item():.4f} |")


if __name__ == "__main__":
    main()
