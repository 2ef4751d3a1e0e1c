"""Which frozen features still find a cell's true partner when one image changes condition (issue 23).

On the positives of a `segswap eval conditions` work folder (each condition's pairs), for every cell of
the object in image a (ground-truth mask), the true partner in b is the cell its ground-truth flow lands
in. Per feature and condition: how often the partner (or a cell next to it, ≤ 1 cell) is b's most similar
cell (top-1) or among its 5 most similar (top-5), by cosine. Features, all at 320 px on the stride-16 grid:
EfficientNet-Lite2 (the pair model's; read from the benchmark's feature cache), DINOv2-S after the blocks
given, and each DINOv2 block concatenated with Lite2 (both L2-normalised: the cosine is their mean).

    .venv/bin/python lab/condition_cell_matching.py /work/scratch/conditions --blocks 9 11 --json cells.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segswap.backbone import backbone_tokens
from segswap.backbone.dinov2 import DinoV2Backbone
from segswap.io import load_image
from segswap.synth.cache import FeatureCache, build_cache

SIZE = 320


def partner_ranks(feats_a: np.ndarray, feats_b: np.ndarray, mask_a: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
    """Per object cell of a: rank (0 = best) of the best cell within one cell of its true partner in b."""
    c, h, w = feats_b.shape
    sim = feats_a.reshape(c, -1).T @ feats_b.reshape(c, -1)  # Na×Nb
    ys, xs = np.nonzero(mask_a > 0.5)
    ranks = []
    for y, x in zip(ys, xs):
        px = min(int(flow_ab[y, x, 0] * w), w - 1)
        py = min(int(flow_ab[y, x, 1] * h), h - 1)
        row = sim[y * w + x]
        near = [(yy * w + xx) for yy in range(max(0, py - 1), min(h, py + 2)) for xx in range(max(0, px - 1), min(w, px + 2))]
        ranks.append(int((row > row[near].max()).sum()))
    return np.array(ranks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--blocks", type=int, nargs="+", default=[9, 11])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    backbones = {b: DinoV2Backbone(b) for b in args.blocks}
    folders = sorted(p for p in args.work.iterdir() if (p / "manifest.jsonl").is_file())
    result = {}
    for folder in folders:
        cache = FeatureCache([build_cache(folder, "efficientnet-lite2", SIZE, show_progress=False)])
        ranks = {}
        for i in tqdm(range(len(cache)), desc=folder.name, unit="pair"):
            item = cache.get([i])
            lite = {s: np.asarray(item[f"feats_{s}"][0], np.float32) for s in "ab"}
            mask_a, flow_ab = np.asarray(item["mask_a"][0]), np.asarray(item["flow_ab"][0])
            feats = {"lite2": lite}
            for b, backbone in backbones.items():
                dino = {s: backbone_tokens(backbone, load_image(cache.pair_dirs[i] / f"{s}.jpg"), SIZE).numpy() for s in "ab"}
                feats[f"dinov2_b{b}"] = dino
                feats[f"lite2+dinov2_b{b}"] = {s: np.concatenate([lite[s], dino[s]]) / np.sqrt(2) for s in "ab"}
            for name, f in feats.items():
                ranks.setdefault(name, []).append(partner_ranks(f["a"], f["b"], mask_a, flow_ab))
        result[folder.name] = {name: {"top1": float(np.mean(np.concatenate(r) == 0)), "top5": float(np.mean(np.concatenate(r) < 5))}
                               for name, r in ranks.items()}
        print(folder.name, {n: round(v["top5"], 3) for n, v in result[folder.name].items()}, flush=True)
    names = list(next(iter(result.values())))
    print(f"{'condition':<18}" + "".join(f"{n[:18]:>20}" for n in names))
    for cond, row in result.items():
        print(f"{cond:<18}" + "".join(f"{row[n]['top1']:9.3f} /{row[n]['top5']:6.3f}   " for n in names))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
