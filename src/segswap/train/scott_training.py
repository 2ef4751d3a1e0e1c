"""What the training loop does for SCOTT, the same-object classifier (paper §4.3): a first stage of
segmentation on matching pairs only, then everything, with half the negatives showing another object
of the same class; validated by same-object precision and recall. The pair models' counterpart is
:mod:`segswap.train.matcher_training`."""

from __future__ import annotations

import numpy as np

from ..errors import SegswapError
from ..evaluation.synthetic import validate_scott
from ..synth.cache import FeatureCache
from ..synth.negatives import object_classes, random_negatives, same_class_negatives
from .losses import scott_loss
from .matcher_training import PositivesAndNegatives


class ScottTraining(PositivesAndNegatives):
    """The recipe's ``segmentation_steps`` without negatives and without the match term, then negatives
    of which ``same_class_negatives`` (a fraction) show the same class of object."""

    def __init__(self, recipe: dict, cache: FeatureCache, train_idx: np.ndarray, val_coseg=None):
        if val_coseg:
            raise SegswapError("--val-coseg scores a pair model's correspondences; SCOTT has none (its validation is "
                               "same-object precision/recall on held-out synthetic pairs)")
        self.recipe, self.cache, self.train_idx = recipe, cache, train_idx
        self.classes = object_classes(cache, np.arange(len(cache)))
        self.train_classes = {int(i): self.classes[int(i)] for i in train_idx}

    def stage(self, step: int) -> str:
        if step < self.recipe["segmentation_steps"]:
            return "segmentation"
        return "hard" if step >= self.recipe["steps"] else "main"

    def negatives(self, rng: np.random.Generator, stage: str) -> np.ndarray:
        if stage == "segmentation":
            return np.zeros((0, 2), dtype=np.int64)
        count = self.recipe["negatives"]
        hard = same_class_negatives(rng, self.train_classes, round(count * self.recipe["same_class_negatives"]), self.cache)
        return np.concatenate([hard, random_negatives(rng, self.train_idx, count - len(hard), self.cache)])

    def loss(self, out: dict, target: dict, stage: str) -> dict:
        weights = self.recipe["loss_weights"]
        return scott_loss(out, target, {**weights, "match": 0.0} if stage == "segmentation" else weights)

    def progress(self, row: dict) -> dict:
        return {k: row[k] for k in ("total", "seg", "match") if k in row}

    def validate(self, model, val_idx: np.ndarray) -> dict:
        return validate_scott(model, self.cache, val_idx, self.recipe["seed"], self.classes)
