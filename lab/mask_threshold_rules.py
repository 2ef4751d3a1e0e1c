"""Mask IoU of SegSwap weights (the shipped ones unless --weights) on synthetic pairs under other
binarisation rules: fixed thresholds, cells above a fraction of the image's own maximum (with a floor
on that maximum), and the cycle-consistent mask (own mask × the other image's mask read through the
flow). The best threshold per image, by object size: lab/synthetic_breakdown.py.

    .venv/bin/python lab/mask_threshold_rules.py W/test_coco320 W/test_unsup320 [--weights W.safetensors]

Negatives are those of `segswap eval synthetic` (seed 0): image a of one pair with image b of
another made from other photos; "neg area" is the share of a's cells marked on them.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import segswap
from segswap.models.layers import read_through_flow
from segswap.synth.cache import FeatureCache, build_cache
from segswap.synth.negatives import random_negatives


def predictions(model, cache: FeatureCache, batch_size: int = 32, seed: int = 0):
    indices = np.arange(len(cache))
    # the negatives validate_synthetic (and so `segswap eval synthetic`) draws for this seed
    pairs = random_negatives(np.random.default_rng([seed, 777]), indices, len(indices), cache)
    probs, cycles, truths, negatives = [], [], [], []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = cache.get(indices[start:start + batch_size])
            out = model({"feats_a": batch["feats_a"], "feats_b": batch["feats_b"]})
            for side, other, flow in (("a", "b", "flow_ab"), ("b", "a", "flow_ba")):
                probs.append(out[f"mask_{side}"].flatten(1))
                moved = read_through_flow(out[f"mask_{other}"][:, None], out[flow])[:, 0]
                cycles.append((out[f"mask_{side}"] * moved).flatten(1))
                truths.append(batch[f"mask_{side}"].flatten(1) > 0.5)
            chunk = pairs[start:start + batch_size]
            fa = cache.get(chunk[:, 0], keys=("feats_a",))["feats_a"]
            fb = cache.get(chunk[:, 1], keys=("feats_b",))["feats_b"]
            negatives.append(model({"feats_a": fa, "feats_b": fb})["mask_a"].flatten(1))
    return torch.cat(probs), torch.cat(cycles), torch.cat(truths), torch.cat(negatives)


def iou(pred: torch.Tensor, truths: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of N×cells boolean masks (0 where both are empty)."""
    return ((pred & truths).sum(1) / (pred | truths).sum(1).clamp(min=1)).float()


def main() -> None:
    args = sys.argv[1:]
    weights = None
    if "--weights" in args:
        at = args.index("--weights")
        weights, args = args[at + 1], args[:at] + args[at + 2:]
    matcher = segswap.load(weights=weights)
    cache = FeatureCache([build_cache(p, matcher.backbone.name, 320, show_progress=False) for p in args])
    probs, cycles, truths, negatives = predictions(matcher.model.eval(), cache)
    rules = [(f"fixed {t}", lambda p, t=t: p > t) for t in (0.7, 0.6, 0.5, 0.4, 0.3)]
    for fraction in (0.3, 0.5, 0.7):
        for floor in (0.2, 0.3, 0.5):
            rules.append((f"> {fraction} × max, max > {floor}",
                          lambda p, a=fraction, f=floor: (p > a * p.amax(1, keepdim=True)) & (p.amax(1, keepdim=True) > f)))
    print("| rule | mask IoU | neg area |\n|---|---|---|")
    for name, rule in rules:
        print(f"| {name} | {iou(rule(probs), truths).mean().item():.3f} | {rule(negatives).float().mean().item():.4f} |")
    print(f"| cycle-consistent mask > 0.5 | {iou(cycles > 0.5, truths).mean().item():.3f} | – |")


if __name__ == "__main__":
    main()
