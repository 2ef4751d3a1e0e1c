"""VPR-Bench recalls of fine-tuned (tail) weights when every image goes through the model's tail once
and everything downstream — the global descriptor, the pair model, Eq. 3's feature cosine, ArtMiner's
verification — works on the tail's output instead of the cut backbone's (block-12) features.

    .venv/bin/python lab/tail_features_vpr.py ../shared/data/eval/vpr_corridor --weights ft.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import segswap
from segswap.evaluation.vpr import evaluate_vpr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--weights", type=Path, required=True, help="weights of a model with a backbone tail")
    args = parser.parse_args()
    matcher = segswap.load(weights=args.weights)
    tail = matcher.model.tail
    if tail is None:
        parser.error(f"{args.weights}: the model has no backbone tail")
    matcher.model.tail = None  # the pair model now takes the tail's output as its features
    backbone_features = matcher.features
    matcher.features = lambda images: tail(backbone_features(images))
    with torch.inference_mode():
        result = evaluate_vpr(args.root, matcher, show_progress=False)
    print(json.dumps(result["recall"], indent=1))


if __name__ == "__main__":
    main()
