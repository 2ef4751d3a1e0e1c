"""What the training loop does for MaCoSNet (:mod:`segswap.models.macosnet`): batches of triplets of
images that show one object, the slides' Eq. 12 on them, and the pair models' validation.

A triplet is a synthetic pair (A, B) and image a of another pair, C, in which the same segment is
pasted (synthetic pairs reuse segments). Its three pairs (A, B), (B, C), (C, A) each share the object,
so each is a positive pair for the pairwise terms, and together they close the transitivity loop.
Knowing which images show a common object, and which do not (negatives: image a of one pair with
image b of another, made from no common photo), is the weak, image-level supervision.

``supervision: weak`` (the shipped recipe) reads nothing of the pairs but their features: the batches
come through :class:`FeaturesOnly`, which refuses any other array. ``supervision: full`` (an
ablation) also reads the masks and flows of the (A, B) pairs and adds the SegSwap terms on them.
Validation (held-out synthetic pairs, MSRC) measures with ground truth and trains nothing.

A recipe's geometry stage (``geometry_steps``, Rocco et al. 2017's training of the warp regressors) comes first: each
of its steps pairs single training images with themselves seen through a random affine transformation
and thin-plate spline (:func:`random_warps`), and the regressors learn to find the known
transformation; it reads features only, and no pair's relation. The features are warped, not the
images (no backbone pass per step).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SegswapError
from ..evaluation.synthetic import validate_synthetic
from ..synth.cache import FeatureCache
from ..synth.negatives import random_negatives
from ..synth.reader import TRUTH_KEYS, pasted_segments
from ..models import ALL_MODEL_CLASSES
from ..models.correlation import cell_centres
from ..models.macosnet import transform_points
from .losses import macosnet_loss, segswap_loss, warp_regression

FEATURES = ("feats_a", "feats_b")
#: The geometry stage's random transformations (Rocco et al.'s kinds, milder: our pairs' copies move
#: less than their synthetic warps): rotation up to ±15°, scale per axis 0.8–1.25, shear ±0.1, shift
#: ±0.25 of the half-image, each TPS control point moved up to ±0.15.
RANDOM_WARP = {"rotation": math.pi / 12, "scale": 1.25, "shear": 0.1, "shift": 0.25, "tps": 0.15}
#: Images per geometry step.
GEOMETRY_BATCH = 16


def random_warps(rng: np.random.Generator, count: int, tps_grid: int) -> dict:
    """``count`` random transformations in MaCoSNet's form (:func:`~segswap.models.macosnet.transform_points`
    with direction "ab"): a TPS on a ``tps_grid``² control grid, then an affine transformation."""
    r = RANDOM_WARP
    angle = rng.uniform(-r["rotation"], r["rotation"], count)
    scale = np.exp(rng.uniform(-math.log(r["scale"]), math.log(r["scale"]), (count, 2)))
    shear = rng.uniform(-r["shear"], r["shear"], count)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    stretch = np.zeros((count, 2, 2))
    stretch[:, 0, 0], stretch[:, 0, 1], stretch[:, 1, 1] = scale[:, 0], shear, scale[:, 1]
    shift = rng.uniform(-r["shift"], r["shift"], (count, 2, 1))
    affine = np.concatenate([rotation @ stretch, shift], axis=2)
    tps = rng.uniform(-r["tps"], r["tps"], (count, tps_grid * tps_grid, 2))
    return {"affine_ab": torch.tensor(affine, dtype=torch.float32), "tps_ab": torch.tensor(tps, dtype=torch.float32)}


def warped_features(feats: torch.Tensor, warp: dict) -> torch.Tensor:
    """B×C×H×W features seen through ``warp`` (taking the result's points to ``feats``' points): cell p
    of the result holds the features at warp(p), bilinearly; zeros where it leaves the image."""
    (b, _, h, w) = feats.shape
    points = (cell_centres(h, w, feats.device) * 2 - 1).expand(b, -1, -1)
    sampling = transform_points(warp, "ab", points).view(b, h, w, 2)
    return F.grid_sample(feats, sampling, mode="bilinear", padding_mode="zeros", align_corners=False)


class FeaturesOnly:
    """A feature cache that hands out features and nothing else: weak supervision by construction."""

    def __init__(self, cache: FeatureCache):
        self._cache = cache

    def get(self, indices, keys=FEATURES) -> dict:
        refused = set(keys) - set(FEATURES)
        if refused:
            raise SegswapError(f"weak supervision reads no {', '.join(sorted(refused))}")
        return self._cache.get(indices, keys=keys)


def triplet_partners(cache: FeatureCache, indices: np.ndarray) -> dict[int, np.ndarray]:
    """Pair i → the pairs j ≠ i whose image a shows a segment that both images of pair i show (only
    pairs with at least one such partner)."""
    indices = [int(i) for i in indices]
    segments = dict(zip(indices, pasted_segments([cache.pair_dirs[i] for i in indices])))
    showing = defaultdict(set)
    for i, (in_a, _) in segments.items():
        for segment in in_a:
            showing[segment].add(i)
    partners = {}
    for i, (in_a, in_b) in segments.items():
        found = set().union(*(showing[s] for s in in_a & in_b)) - {i}
        if found:
            partners[i] = np.array(sorted(found))
    return partners


class MacosnetTraining:
    """Triplet batches of ``positives`` triplets (3 pairs each) and ``negatives`` pairs; the loss of
    ``loss_weights`` (:data:`~segswap.train.losses.MACOSNET_LOSS_WEIGHTS`, and with full supervision
    the SegSwap terms ``mask``, ``corr``, ``dice``)."""

    def __init__(self, recipe: dict, cache: FeatureCache, train_idx: np.ndarray, val_coseg=None):
        if recipe["supervision"] not in ("weak", "full"):
            raise SegswapError(f"supervision must be 'weak' or 'full', got {recipe['supervision']!r}")
        self.recipe, self.cache = recipe, cache
        self.weak = recipe["supervision"] == "weak"
        self.source = FeaturesOnly(cache) if self.weak else cache
        self.partners = triplet_partners(cache, train_idx)
        if not self.partners:
            raise SegswapError("no training pair shares a pasted segment with another pair's image a: MaCoSNet "
                               "needs triplets of images showing one object (pairs made by `segswap synth` from segments)")
        self.firsts = np.array(sorted(self.partners))
        self.tps_grid = {**ALL_MODEL_CLASSES["macosnet"].default_conf, **recipe["model_conf"]}["tps_grid"]

    def stage(self, step: int) -> str:
        """``"geometry"`` for the recipe's ``geometry_steps``, then ``"main"``."""
        return "geometry" if step < self.recipe.get("geometry_steps", 0) else "main"

    def lr_scale(self, stage: str, group: str | None) -> float:
        """The geometry stage trains the regressors alone (the decoder's Adam state stays untouched)."""
        return float(stage != "geometry" or group != "decoder")

    def batch(self, rng: np.random.Generator, stage: str = "main", hard_pool=None) -> tuple[dict, dict]:
        """The stage's batch: :meth:`geometry_batch`, or :meth:`triplet_batch`."""
        return self.geometry_batch(rng) if stage == "geometry" else self.triplet_batch(rng)

    def geometry_batch(self, rng: np.random.Generator) -> tuple[dict, dict]:
        """:data:`GEOMETRY_BATCH` training images (both images of half as many pairs), each paired with
        itself through a random warp; the target is the warp."""
        chosen = rng.choice(self.firsts, size=GEOMETRY_BATCH // 2)
        pairs = self.source.get(chosen)
        feats = torch.cat([pairs["feats_a"], pairs["feats_b"]])
        warp = random_warps(rng, len(feats), self.tps_grid)
        return {"feats_a": feats, "feats_b": warped_features(feats, warp)}, {"warp": warp}

    def triplet_batch(self, rng: np.random.Generator) -> tuple[dict, dict]:
        """Inputs of the 3T pairs (A, B), (B, C), (C, A) of T triplets, then of the negatives (image a
        of one pair, b of another, made from no common photo), and what the loss needs."""
        firsts = rng.choice(self.firsts, size=self.recipe["positives"])
        thirds = np.array([rng.choice(self.partners[int(i)]) for i in firsts])
        pairs = self.source.get(firsts)
        third = self.source.get(thirds, keys=("feats_a",))["feats_a"]
        a, b = pairs["feats_a"], pairs["feats_b"]
        negatives = random_negatives(rng, self.firsts, self.recipe["negatives"], self.cache)
        negative_a = self.source.get(negatives[:, 0], keys=("feats_a",))["feats_a"]
        negative_b = self.source.get(negatives[:, 1], keys=("feats_b",))["feats_b"]
        inputs = {"feats_a": torch.cat([a, b, third, negative_a]), "feats_b": torch.cat([b, third, a, negative_b])}
        count = len(firsts)
        target = {**inputs, "triplets": torch.arange(3 * count).view(3, count).T, "positives": 3 * count}
        if not self.weak:
            target["truth"] = self.cache.get(firsts, keys=TRUTH_KEYS)
        return inputs, target

    def loss(self, out: dict, target: dict, stage: str) -> dict:
        if stage == "geometry":
            warp = warp_regression(out, target["warp"])
            return {"warp": warp, "total": warp}
        weights = self.recipe["loss_weights"]
        terms = macosnet_loss(out, target, target["triplets"], target["positives"],
                              {k: v for k, v in weights.items() if k not in ("mask", "corr", "dice")})
        if "truth" in target:
            truth = target["truth"]
            supervised = segswap_loss({k: out[k][:len(truth["mask_a"])] for k in ("mask_a", "mask_b", "flow_ab", "flow_ba")},
                                      truth, {"mask": weights.get("mask", 0.0), "corr": weights.get("corr", 0.0),
                                              "dice": weights.get("dice", 0.0), "transported": 0.0})
            terms["total"] = terms["total"] + supervised.pop("total")
            terms.update({k: supervised[k] for k in ("mask", "corr", "dice")})
        return terms

    def progress(self, row: dict) -> dict:
        return {k: row[k] for k in ("total", "warp", "matching", "contrast", "task") if k in row}

    def validate(self, model, val_idx: np.ndarray) -> dict:
        return validate_synthetic(model, self.cache, val_idx, self.recipe["seed"])
