"""What the training loop does for a pair model (SegSwap, NC-Net): each step's negatives, its loss
and its validation. :mod:`segswap.train.scott_training` is SCOTT's counterpart."""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.synthetic import validate_synthetic
from ..synth.cache import FeatureCache
from ..synth.negatives import random_negatives
from .losses import segswap_loss


def make_batch(cache: FeatureCache, positives: np.ndarray, negatives: np.ndarray) -> tuple[dict, dict]:
    """Model inputs and targets for positive pairs and for negative (a_i, b_j), i ≠ j, pairs."""
    pos = cache.get(positives)
    inputs = {"feats_a": pos["feats_a"], "feats_b": pos["feats_b"]}
    target = {k: pos[k] for k in ("mask_a", "mask_b", "flow_ab", "flow_ba")}
    if len(negatives):
        na = cache.get(negatives[:, 0], keys=("feats_a",))["feats_a"]
        nb = cache.get(negatives[:, 1], keys=("feats_b",))["feats_b"]
        inputs = {"feats_a": torch.cat([inputs["feats_a"], na]), "feats_b": torch.cat([inputs["feats_b"], nb])}
        for k in target:
            target[k] = torch.cat([target[k], torch.zeros((len(negatives), *target[k].shape[1:]))])
    return inputs, target


class PositivesAndNegatives:
    """Batches of the recipe's ``positives`` training pairs and ``negatives`` (a_i, b_j) pairs: from the
    mined pool in the hard stage, otherwise from the subclass's ``negatives(rng, stage)``."""

    recipe: dict
    cache: FeatureCache
    train_idx: np.ndarray

    def batch(self, rng: np.random.Generator, stage: str, hard_pool: np.ndarray | None) -> tuple[dict, dict]:
        positives = rng.choice(self.train_idx, size=self.recipe["positives"])
        if stage == "hard" and hard_pool is not None and len(hard_pool):
            negatives = hard_pool[rng.choice(len(hard_pool), size=self.recipe["negatives"])]
        else:
            negatives = self.negatives(rng, stage)
        return make_batch(self.cache, positives, negatives)

    def lr_scale(self, stage: str, group: str | None) -> float:
        """The learning rate of parameter group ``group`` in ``stage``, relative to its own."""
        return 1.0


class PairTraining(PositivesAndNegatives):
    """Random negatives (never two images of a common photo), the paper's Eq. 2 with a batch Dice term
    (``loss_weights``), mask IoU and correspondence error on the held-out pairs."""

    def __init__(self, recipe: dict, cache: FeatureCache, train_idx: np.ndarray, val_coseg=None):
        self.recipe, self.cache, self.train_idx = recipe, cache, train_idx

    def stage(self, step: int) -> str:
        """``"main"``, then ``"hard"`` (negatives from the mined pool) after the recipe's ``steps``."""
        return "hard" if step >= self.recipe["steps"] else "main"

    def negatives(self, rng: np.random.Generator, stage: str) -> np.ndarray:
        """The step's (i, j) negatives when the hard-negative pool does not give them."""
        return random_negatives(rng, self.train_idx, self.recipe["negatives"], self.cache)

    def loss(self, out: dict, target: dict, stage: str) -> dict:
        return segswap_loss(out, target, self.recipe["loss_weights"])

    def progress(self, row: dict) -> dict:
        """What the progress bar shows of a log row."""
        return {"loss": row["total"], "mask": row["mask"], "corr": row["corr"]}

    def validate(self, model, val_idx: np.ndarray) -> dict:
        return validate_synthetic(model, self.cache, val_idx, self.recipe["seed"])
