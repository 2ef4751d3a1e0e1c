"""The evidence a fused `segswap verify` could combine, measured per pair (issue 23, item 4).

For each pair (a, b), on the images resized to the model size (320 px long side):

- ``scott``: SCOTT's match probability (shipped weights);
- ``pair_score``: the shipped SegSwap transformer's matched fraction (paper Eq. 3 over a's cells, one view),
  as `segswap eval conditions` and `calibrate-search` compute it;
- ``artminer``: ArtMiner's training-free verification score of a in b (segswap.verify.ransac.verify);
- ``sift_inliers``: SIFT ratio-test matches consistent with one RANSAC homography (OpenCV).

Sets: ``calibration`` (a `segswap synth --conditions all` folder: its pairs against the negatives
`segswap eval calibrate-verify` draws, seed 0), ``conditions`` (each folder of a `segswap eval conditions`
work folder, negatives drawn with the benchmark's seed 201), ``samples`` (the 8 sample pairs of
../shared/data/eval/pairs and the 56 non-matching combinations, as lab/verify_sample_pairs.py).

    .venv/bin/python lab/verify_fusion_features.py calibration /work/scratch/verify_cal_301 --out cal.npz
    .venv/bin/python lab/verify_fusion_features.py conditions /work/scratch/conditions --out cond.npz
    .venv/bin/python lab/verify_fusion_features.py samples --out samples.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import segswap
from segswap.evaluation.baselines import sift_features, sift_inlier_count
from segswap.evaluation.calibration import match_probabilities, matched_fractions, negative_pairs
from segswap.grid import STRIDE
from segswap.io import load_image, resize_for_model
from segswap.models.outputs import matched_fraction, similarity_score
from segswap.synth.cache import FeatureCache, build_cache
from segswap.verify.ransac import verify as artminer_verify
from segswap.verify.same_object import load_verifier

PAIRS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "pairs"
SAMPLE_PAIRS = [("box.png", "box_in_scene.png"), ("graf1.png", "graf3.png"), ("aero1.jpg", "aero3.jpg"),
                ("leuvenA.jpg", "leuvenB.jpg"), ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg"),
                ("rubberwhale1.png", "rubberwhale2.png"), ("basketball1.png", "basketball2.png"),
                ("motorcycle_left.png", "motorcycle_right.png")]
COLUMNS = ("scott", "pair_score", "artminer", "sift_inliers")


def artminer_score(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """ArtMiner's score of a (C×h×w) in b (C×h×w), b's cells at STRIDE px."""
    target = feats_b.numpy()
    return artminer_verify(feats_a.numpy(), target, (target.shape[2] * STRIDE, target.shape[1] * STRIDE)).score


def cache_pairs(folder: Path, a_indices, b_indices, verifier, matcher) -> np.ndarray:
    """N×4 evidence for image a of pair a_indices[k] against image b of pair b_indices[k] of ``folder``."""
    cache = FeatureCache([build_cache(folder, matcher.backbone.name, matcher.size)])
    return _cache_evidence(cache, a_indices, b_indices, verifier, matcher)


def _cache_evidence(cache, a_indices, b_indices, verifier, matcher) -> np.ndarray:
    scott = match_probabilities(verifier, cache, a_indices, b_indices)
    pair_score = matched_fractions(matcher, cache, a_indices, b_indices)
    sift, artminer, inliers = {}, [], []

    def sift_of(i: int, side: str):
        if (i, side) not in sift:
            image = load_image(cache.pair_dirs[i] / f"{side}.jpg")
            sift[i, side] = sift_features(resize_for_model(image, matcher.size))
        return sift[i, side]

    for i, j in zip(a_indices, b_indices):
        i, j = int(i), int(j)
        feats_a = cache.get([i], keys=("feats_a",))["feats_a"][0]
        feats_b = cache.get([j], keys=("feats_b",))["feats_b"][0]
        artminer.append(artminer_score(feats_a, feats_b))
        inliers.append(sift_inlier_count(sift_of(i, "a"), sift_of(j, "b")))
    return np.column_stack([scott, pair_score, artminer, inliers])


def labelled(folder: Path, seed: int, verifier, matcher) -> tuple[np.ndarray, np.ndarray]:
    """Evidence and labels of a synth folder's pairs (1) and its negatives (0) drawn as calibrate-verify does."""
    cache = FeatureCache([build_cache(folder, matcher.backbone.name, matcher.size)])
    indices = np.arange(len(cache))
    negatives, _ = negative_pairs(cache, seed)
    a = np.r_[indices, negatives[:, 0]]
    b = np.r_[indices, negatives[:, 1]]
    return _cache_evidence(cache, a, b, verifier, matcher), np.r_[np.ones(len(indices)), np.zeros(len(negatives))]


def sample_evidence(verifier, matcher) -> dict:
    """Evidence of the 8 matching sample pairs and the 56 non-matching combinations, and graf1 vs box."""
    names = sorted({n for pair in SAMPLE_PAIRS for n in pair})
    rgb = {n: resize_for_model(load_image(PAIRS_DIR / n), matcher.size) for n in names}
    feats = {n: matcher.features(torch.from_numpy(rgb[n]).permute(2, 0, 1)[None].float().div(255)) for n in names}
    sift = {n: sift_features(rgb[n]) for n in names}

    def evidence(a: str, b: str) -> list[float]:
        with torch.inference_mode():
            scott = float(verifier.model({"feats_a": feats[a], "feats_b": feats[b]})["match_prob"][0])
        pred = matcher.predict(feats[a], feats[b])
        score = similarity_score(pred["mask_a"], pred["mask_b"], pred["flow_ab"], feats[a], feats[b])
        fraction = float(matched_fraction(score, feats[a].shape[-2:])[0])
        return [scott, fraction, artminer_score(feats[a][0], feats[b][0]), sift_inlier_count(sift[a], sift[b])]

    matching = [(a, b) for a, b in SAMPLE_PAIRS]
    other = [(SAMPLE_PAIRS[i][0], SAMPLE_PAIRS[j][1]) for i in range(8) for j in range(8) if i != j]
    pairs = matching + other + [("graf1.png", "box.png")]
    return {"evidence": np.array([evidence(a, b) for a, b in pairs]), "labels": np.r_[np.ones(8), np.zeros(56), [0]],
            "pairs": np.array(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=("calibration", "conditions", "samples"))
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    matcher = segswap.load()
    verifier = load_verifier(threshold=0.5, size=matcher.size)  # the threshold is not used here
    if verifier.backbone.name != matcher.backbone.name:
        raise SystemExit("SCOTT and the pair model use different backbones; this script assumes one")
    if args.set == "samples":
        np.savez(args.out, columns=COLUMNS, **sample_evidence(verifier, matcher))
    elif args.set == "calibration":
        evidence, labels = labelled(args.folder, 0, verifier, matcher)
        np.savez(args.out, columns=COLUMNS, evidence=evidence, labels=labels)
    else:
        arrays = {}
        for folder in sorted(p for p in args.folder.iterdir() if (p / "manifest.jsonl").is_file()):
            evidence, labels = labelled(folder, 201, verifier, matcher)
            arrays[f"{folder.name}_evidence"], arrays[f"{folder.name}_labels"] = evidence, labels
        np.savez(args.out, columns=COLUMNS, **arrays)
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
