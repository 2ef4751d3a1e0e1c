"""Named training recipes (``segswap train --config NAME``): the ones behind the shipped weights and
the `make weights-*` targets, and small ones for tests; :mod:`segswap.train.ablations` holds those
measured against them. A recipe overrides :data:`segswap.train.base_recipe.BASE`; its hash goes into
the exported weights so every weights file names the recipe that made it."""

from __future__ import annotations

import copy
import hashlib
import json

from ..errors import SegswapError
from ..models import ALL_MODEL_CLASSES, INFERENCE_OPTIONS
from ..models.tail import tail_input_backbone
from .ablations import ABLATIONS
from .base_recipe import (BASE, EQ2_DICE, JACCARD_FP05, MODEL_RECIPE_OPTIONS, OPTIONAL_RECIPE_OPTIONS, TAIL,
                          WITHOUT_GRID_CONTEXT)
from .losses import MACOSNET_LOSS_WEIGHTS

RECIPES = {
    # The shipped SegSwap weights (`make weights`): each cell sees its 3×3 neighbourhood (GridContext) and
    # correlation cues of whole 3×3 patches (diagonal_consensus): +0.06 and +0.09 held-out IoU at 500
    # steps (lab/training.md).
    "default": {"steps": 3000},
    # The shipped SegSwap weights' second stage (`make weights`): `segswap train --init` from the default
    # recipe's weights (`segswap verify` keeps those) with Lite2's last two blocks trained inside the model
    # (the tail starts as the pretrained blocks), on the default's folders plus pairs where one image is
    # under a condition (night, haze, engraving, ...); run twice, 1000 then 2000 steps with a fourth
    # folder: night + depictions pair-score AP 0.671 → 0.737, same-condition and MSRC numbers up too
    # (lab/training.md).
    "conditions-tail": {"backbone": "efficientnet-lite2-block12", "model_conf": TAIL, "steps": 1000, "lr": 1e-4,
                        "warmup": 50},
    # `make weights-coseg`: the fine-tuned Lite2 tail and the per-image Jaccard terms; co-segments
    # collections best, recognises places worse, so not shipped (lab/training.md).
    "finetune-jaccard": {"backbone": "efficientnet-lite2-block12", "steps": 3000,
                         "model_conf": TAIL,
                         "loss_weights": JACCARD_FP05},
    # The NC-Net variant (segswap.models.ncnet) on the same data and Eq. 2 + Dice; its own model options.
    # A step costs ~10× the transformer's, so 300 steps (~30 min) is what fits the budget.
    "ncnet": {"model": "ncnet", "model_conf": {"channels": [16, 1], "kernel": 3, "temperature": 0.05}, "steps": 300,
              "loss_weights": EQ2_DICE},
    # MaCoSNet (segswap.models.macosnet), weakly supervised: triplets of images showing one object, the
    # slides' Eq. 12 with every λ = 1; no mask or flow of the pairs is read (lab/training.md).
    "macosnet": {"model": "macosnet", "steps": 2000, "positives": 4, "negatives": 4, "supervision": "weak",
                 "loss_weights": MACOSNET_LOSS_WEIGHTS},
    # The shipped MaCoSNet's second run (`segswap train --init` from the `macosnet` run's weights, `make
    # weights-macosnet`): Rocco et al.'s geometry stage alone, the regressors learning random warps of
    # single training images; the decoder is untouched and keeps its masks (lab/training.md).
    "macosnet-warp": {"model": "macosnet", "steps": 1500, "geometry_steps": 1500, "positives": 4, "negatives": 4,
                      "loss_weights": MACOSNET_LOSS_WEIGHTS},
    # SCOTT (segswap.models.scott), the same-object classifier behind `segswap verify`: first
    # segmentation on matching pairs only, then everything; half the negatives show another object
    # of the same class (lab/training.md).
    "scott": {"model": "scott", "steps": 1500, "segmentation_steps": 300, "positives": 8, "negatives": 8,
              "same_class_negatives": 0.5, "loss_weights": {"seg": 1.0, "match": 1.0}, "val_every": 250,
              "val_pairs": 200},
    # Seconds, for tests and smoke runs.
    "scott-tiny": {"model": "scott", "model_conf": {"dim": 16, "stages": 2, "matcher_dim": 8, "pool": 4},
                   "steps": 6, "segmentation_steps": 2, "positives": 2, "negatives": 2, "same_class_negatives": 0.5,
                   "loss_weights": {"seg": 1.0, "match": 1.0}, "warmup": 2, "val_pairs": 4, "val_every": 3,
                   "checkpoint_every": 2},
    "macosnet-tiny": {"model": "macosnet", "model_conf": {"grid": 7, "regressor_channels": [8, 8], "regressor_kernels": [3, 3],
                                                        "decoder_dim": 8},
                      "steps": 4, "positives": 2, "negatives": 2, "warmup": 2, "val_pairs": 2, "val_every": 2,
                      "checkpoint_every": 2, "loss_weights": MACOSNET_LOSS_WEIGHTS},
    "tiny": {"model_conf": {"dim": 32, "heads": 2, "ffn_dim": 32, "layers": "ICI", "dropout": 0.0, **WITHOUT_GRID_CONTEXT},
             "steps": 6,
             "positives": 2, "negatives": 2, "warmup": 2, "val_pairs": 2, "val_every": 3, "checkpoint_every": 2,
             "hard_negatives": {"steps": 2, "pool": 4, "threshold": 0.0, "lr": 1e-5}},
}


def _merge(base: dict, override: dict, open_keys: bool = False) -> dict:
    """``override`` applied to ``base``; a key ``base`` lacks is an error, except inside ``model_conf``
    (the model checks its own options, so a new option leaves the older recipes' hashes alone)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            if not open_keys:
                raise SegswapError(f"unknown recipe option {key!r}")
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and key != "loss_weights":
            out[key] = _merge(base[key], value, open_keys=key == "model_conf")
        else:
            out[key] = copy.deepcopy(value)  # recipes share constants (GRID_CONTEXT, ...): hand out copies
    return out


def get_recipe(name: str = "default", **overrides) -> dict:
    """The recipe ``name`` (of :data:`RECIPES` or :data:`~segswap.train.ablations.ABLATIONS`) with
    ``overrides`` (top-level keys) applied."""
    known = {**RECIPES, **ABLATIONS}
    if name not in known:
        raise SegswapError(f"unknown training config {name!r}; choose from {', '.join(known)}")
    spec = known[name]
    base = BASE
    if spec.get("model", BASE["model"]) != BASE["model"]:  # another model: its options, not the transformer's
        options = {k: v for k, v in ALL_MODEL_CLASSES[spec["model"]].default_conf.items()
                   if k != "input_dim" and k not in INFERENCE_OPTIONS}
        base = {**BASE, "model": spec["model"], "model_conf": options, **MODEL_RECIPE_OPTIONS.get(spec["model"], {})}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    base = {**base, **{k: v for k, v in OPTIONAL_RECIPE_OPTIONS.items() if k in spec or k in overrides}}
    recipe = _merge(base, spec)
    recipe = _merge(recipe, overrides)
    recipe["name"] = name
    defaults = ALL_MODEL_CLASSES[recipe["model"]].default_conf
    unknown = set(recipe["model_conf"]) - set(defaults)
    if unknown:
        raise SegswapError(f"unknown {recipe['model']} model option(s) {', '.join(sorted(unknown))}")
    options = {**defaults, **recipe["model_conf"]}
    tail = options.get("tail_blocks", 0)  # only the transformer has a tail
    if tail:
        needed = tail_input_backbone(options["tail_network"], tail)
        if recipe["backbone"] != needed:
            raise SegswapError(f"a {tail}-block backbone tail continues from backbone {needed}, not {recipe['backbone']}")
    return recipe


def recipe_hash(recipe: dict) -> str:
    """A short, stable hash of everything that defines a training run."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
