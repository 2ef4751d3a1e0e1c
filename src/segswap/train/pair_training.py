"""What the training loop does for a pair model (SegSwap, NC-Net): each step's negatives, its loss
and its validation. :mod:`segswap.train.scott_training` is SCOTT's counterpart."""

from __future__ import annotations

import numpy as np

from ..evaluation.synthetic import validate_synthetic
from ..synth.cache import FeatureCache
from ..synth.negatives import random_negatives
from .losses import segswap_loss


class PairTraining:
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
