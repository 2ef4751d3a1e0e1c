"""DINOv2 evidence that two images show the same object, measured per pair (issue 23, the semantic-feature lever).

The pair model's score fails where one image changes depiction or light (night, engravings, halftone...),
because its EfficientNet-Lite2 cells change with the look. DINOv2-S tokens are known to survive such
changes better. For each pair (a, b), both resized to 320 px long side (stride-16 token grid, as the pair
model's), from DINOv2-S tokens after ``--block`` (L2-normalised, optionally with each image's mean token
removed, ``_c`` columns):

- ``artminer``: ArtMiner's verification score of a in b (mutual nearest neighbours + affine RANSAC,
  segswap.verify.ransac.verify) on DINOv2 tokens instead of Lite2 cells;
- ``mnn``: mutual nearest neighbours whose cosine is at least 0.5, over a's cells;
- ``best``: mean over a's cells of the best cosine in b.

Pairs are the ones lab/verify_fusion_features.py and lab/verify_multiscale.py score, in the same
order (positives, then the negatives calibrate-verify / eval conditions draw), so columns can be joined.

    .venv/bin/python lab/dinov2_pair_evidence.py calibration /work/scratch/verify_cal_301 --out dcal.npz
    .venv/bin/python lab/dinov2_pair_evidence.py conditions /work/scratch/conditions --out dcond.npz
    .venv/bin/python lab/dinov2_pair_evidence.py samples --out dsamples.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segswap.backbone import backbone_tokens
from segswap.backbone.dinov2 import DinoV2Backbone
from segswap.evaluation.calibration import negative_pairs
from segswap.grid import STRIDE
from segswap.io import load_image
from segswap.synth.cache import FeatureCache, build_cache
from segswap.verify.ransac import mutual_nearest_neighbours, verify as artminer_verify

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_multiscale import PAIRS_DIR, sample_pairs  # noqa: E402

SIZE = 320
MNN_COSINE = 0.5
COLUMNS = ("artminer", "mnn", "best", "artminer_c", "mnn_c", "best_c")


def tokens(backbone, path: Path) -> np.ndarray:
    return backbone_tokens(backbone, load_image(path), SIZE).numpy()


def centred(feats: np.ndarray) -> np.ndarray:
    flat = feats.reshape(len(feats), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return (flat / np.linalg.norm(flat, axis=0, keepdims=True).clip(1e-6)).reshape(feats.shape)


def evidence(feats_a: np.ndarray, feats_b: np.ndarray) -> list[float]:
    out = {}
    for suffix, (fa, fb) in (("", (feats_a, feats_b)), ("_c", (centred(feats_a), centred(feats_b)))):
        target_size = (fb.shape[2] * STRIDE, fb.shape[1] * STRIDE)
        out[f"artminer{suffix}"] = artminer_verify(fa, fb, target_size).score
        similarity = fa.reshape(len(fa), -1).T @ fb.reshape(len(fb), -1)
        rows, columns = mutual_nearest_neighbours(similarity)
        cells = similarity.shape[0]
        out[f"mnn{suffix}"] = float((similarity[rows, columns] >= MNN_COSINE).sum()) / cells
        out[f"best{suffix}"] = float(similarity.max(axis=1).mean())
    return [out[c] for c in COLUMNS]


def folder_evidence(backbone, folder: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Evidence and labels of a synth folder's positives and the negatives drawn with ``seed``."""
    cache = FeatureCache([build_cache(folder, "efficientnet-lite2", SIZE, show_progress=False)])
    indices = np.arange(len(cache))
    negatives, _ = negative_pairs(cache, seed)
    a_idx, b_idx = np.r_[indices, negatives[:, 0]], np.r_[indices, negatives[:, 1]]
    feats = {}
    for i in tqdm(indices, desc=f"dinov2 {folder.name}", unit="pair"):
        for side in ("a", "b"):
            feats[int(i), side] = tokens(backbone, cache.pair_dirs[int(i)] / f"{side}.jpg")
    rows = [evidence(feats[int(i), "a"], feats[int(j), "b"]) for i, j in zip(a_idx, b_idx)]
    return np.array(rows), np.r_[np.ones(len(indices)), np.zeros(len(negatives))]


def sample_evidence(backbone) -> dict:
    pairs, labels = sample_pairs()
    feats = {n: tokens(backbone, PAIRS_DIR / n) for n in sorted({n for pair in pairs for n in pair})}
    return {"evidence": np.array([evidence(feats[a], feats[b]) for a, b in pairs]), "labels": labels, "pairs": np.array(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=("calibration", "conditions", "samples"))
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--block", type=int, default=9)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    backbone = DinoV2Backbone(args.block)
    if args.set == "samples":
        np.savez(args.out, columns=COLUMNS, **sample_evidence(backbone))
    elif args.set == "calibration":
        rows, labels = folder_evidence(backbone, args.folder, 0)
        np.savez(args.out, columns=COLUMNS, evidence=rows, labels=labels)
    else:
        arrays = {}
        for folder in sorted(p for p in args.folder.iterdir() if (p / "manifest.jsonl").is_file()):
            rows, labels = folder_evidence(backbone, folder, 201)
            arrays[f"{folder.name}_evidence"], arrays[f"{folder.name}_labels"] = rows, labels
        np.savez(args.out, columns=COLUMNS, **arrays)
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
