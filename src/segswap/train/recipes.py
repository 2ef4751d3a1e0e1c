"""Named training recipes (``segswap train --config NAME``). A recipe is plain JSON-able data; its hash
goes into the exported weights so every weights file names the recipe that made it."""

from __future__ import annotations

import copy
import hashlib
import json

from ..errors import SegswapError
from ..models import ALL_MODEL_CLASSES, INFERENCE_OPTIONS
from ..models.tail import tail_input_backbone

BASE = {
    "model": "segswap",
    # Width 128 and the soft-argmax flow head: what fits a 2-core CPU budget (docs/training.md).
    "model_conf": {"dim": 128, "heads": 2, "ffn_dim": 128, "layers": "ICICI", "dropout": 0.0, "pos_weight": 0.1,
                   "flow_head": "match", "correlation_prior": True},
    "backbone": "efficientnet-lite2",
    "size": 320,               # pairs are made and cached at this size (20×20 cells); inference may use more
    "steps": 1500,             # held-out IoU stopped rising after ~1200 steps of a 2400-step run (plain model)
    "positives": 6,            # the authors use 5 + 15; fewer negatives buy more positive steps per hour
    "negatives": 6,
    "lr": 4e-4,
    "lr_final": 1e-5,
    "warmup": 100,
    "betas": [0.5, 0.999],
    # The paper's terms plus a batch Dice term: with BCE alone ~90 % empty cells keep probabilities
    # under 0.5 (IoU at 0.5 of 0.05 where the best threshold gives 0.23; docs/training.md). Without
    # the transported-mask term: held-out IoU 0.253 vs 0.199 at 1500 steps, the same flow error.
    "loss_weights": {"mask": 1.0, "transported": 0.0, "corr": 8.0, "dice": 1.0},
    # The hard-negative stage is off: both times it ran (150 and 100 steps after the main stage) it
    # lowered held-out IoU and MSRC J (docs/training.md). The "hard-negatives" recipe turns it on.
    "hard_negatives": {"steps": 0, "pool": 500, "threshold": 0.04, "lr": 1e-5},
    "val_pairs": 100,          # held-out synthetic pairs (never trained on)
    "val_every": 150,
    "checkpoint_every": 25,
    "seed": 0,
}

#: Recipe options only some models have (added to their recipes alone, so other recipes' hashes stay put).
MODEL_RECIPE_OPTIONS = {"scott": {"segmentation_steps": 0, "same_class_negatives": 0.0}}
#: Options a recipe (or an override) may set and that are absent otherwise, for the same reason:
#: ``ema_decay`` validates, checkpoints and exports an exponential moving average of the weights.
OPTIONAL_RECIPE_OPTIONS = {"ema_decay": 0.0}

#: The paper's Eq. 2 (mask, transported mask, η = 8 × correspondences) plus our batch Dice term.
EQ2_DICE = {"mask": 1.0, "transported": 1.0, "corr": 8.0, "dice": 1.0}

#: The default model's options beyond BASE: 3×3 grid context and patch-level cues.
GRID_CONTEXT = {"context_convs": 1, "consensus_radius": 1}
#: ... with Lite2's last two blocks fine-tuned inside it (features cached after block 12).
TAIL = {**GRID_CONTEXT, "tail_blocks": 2, "tail_lr_scale": 1.0}
#: BASE's loss with the per-image Jaccard terms as in the 3000-step jaccard-fp0.5 run.
JACCARD_FP05 = {**BASE["loss_weights"], "jaccard": 1.0, "false_positive": 0.5}

RECIPES = {
    # Each cell sees its 3×3 neighbourhood (GridContext) and correlation cues of whole 3×3 patches
    # (diagonal_consensus): +0.06 and +0.09 held-out IoU at 500 steps (docs/training.md).
    "default": {"model_conf": GRID_CONTEXT, "steps": 3000},
    # The default until 2026-11-23 (evening): per-cell attention tokens and per-cell cues only.
    "plain": {},
    "context": {"model_conf": {"context_convs": 1}},
    "context2": {"model_conf": {"context_convs": 2}},
    # Ablations in the spirit of the paper's Table 3. They were measured against the earlier default,
    # the paper's full Eq. 2 + Dice ("with-transported-loss"), and keep its loss so they reproduce
    # docs/training.md's table.
    "with-transported-loss": {"loss_weights": EQ2_DICE},
    "no-corr-loss": {"loss_weights": {**EQ2_DICE, "corr": 0.0}},
    "hard-negatives": {"hard_negatives": {"steps": 100}, "loss_weights": EQ2_DICE},
    "paper-loss": {"loss_weights": {**EQ2_DICE, "dice": 0.0}},
    # The paper's coordinate-regression head, for comparison with the soft-argmax head.
    "regress-head": {"model_conf": {"flow_head": "regress"}, "loss_weights": EQ2_DICE},
    "no-correlation-prior": {"model_conf": {"correlation_prior": False}, "loss_weights": EQ2_DICE},
    # Ours: cross-entropy of the match distribution against the true point's cell weights, beside the
    # paper's L1 on the soft-argmax (segswap.train.losses.match_nll).
    "match-nll": {"model_conf": GRID_CONTEXT,
                  "loss_weights": {**BASE["loss_weights"], "match_nll": 1.0}},
    # The default plus a per-image soft Jaccard term (segswap.train.losses.image_jaccard): the batch
    # Dice lets large objects outweigh small ones, which the per-image IoU counts equally.
    "jaccard": {"model_conf": GRID_CONTEXT,
                "loss_weights": {**BASE["loss_weights"], "jaccard": 1.0}},
    # ... and its counterpart on negatives (image_false_positive): the Jaccard term alone tripled the
    # area marked on negatives in a 600-step pilot.
    "jaccard-fp": {"model_conf": GRID_CONTEXT,
                   "loss_weights": {**BASE["loss_weights"], "jaccard": 1.0, "false_positive": 1.0}},
    "jaccard-fp0.3": {"model_conf": GRID_CONTEXT,
                      "loss_weights": {**BASE["loss_weights"], "jaccard": 1.0, "false_positive": 0.3}},
    # 3000 steps: test IoU 0.546 vs 0.504 and MSRC J 0.630 vs 0.604, but VPR R@1 0.946 vs 0.964, so not
    # shipped (docs/training.md).
    "jaccard-fp0.5": {"model_conf": GRID_CONTEXT, "steps": 3000,
                      "loss_weights": JACCARD_FP05},
    # The default with Lite2's last two blocks fine-tuned inside the model (segswap.models.tail) at the
    # full learning rate (a tenth of it gained nothing at 600 steps); features cached after block 12.
    "finetune": {"backbone": "efficientnet-lite2-block12", "steps": 3000,
                 "model_conf": TAIL},
    # Both: the fine-tuned tail and the per-image Jaccard terms of jaccard-fp0.5 (a 600-step pilot so far).
    "finetune-jaccard": {"backbone": "efficientnet-lite2-block12", "steps": 3000,
                         "model_conf": TAIL,
                         "loss_weights": JACCARD_FP05},
    # The default with a moving average of its weights (decay 0.998: about the last 500 steps), the
    # one validated and exported. On seed 1: no effect on the masks, +0.03 MSRC J (docs/training.md).
    "default-ema": {"model_conf": GRID_CONTEXT, "steps": 3000, "ema_decay": 0.998},
    # The paper's width (256) on the default loss: is the model too small for the data (docs/training.md)?
    "wide": {"model_conf": {"dim": 256, "ffn_dim": 256}},
    # The NC-Net variant (segswap.models.ncnet) on the same data and Eq. 2 + Dice; its own model options.
    # A step costs ~10× the transformer's, so 300 steps (~30 min) is what fits the budget.
    "ncnet": {"model": "ncnet", "model_conf": {"channels": [16, 1], "kernel": 3, "temperature": 0.05}, "steps": 300,
              "loss_weights": EQ2_DICE},
    # SCOTT (segswap.models.scott), the same-object classifier behind `segswap verify`: first
    # segmentation on matching pairs only, then everything; half the negatives show another object
    # of the same class (docs/training.md).
    "scott": {"model": "scott", "steps": 1500, "segmentation_steps": 300, "positives": 8, "negatives": 8,
              "same_class_negatives": 0.5, "loss_weights": {"seg": 1.0, "match": 1.0}, "val_every": 250,
              "val_pairs": 200},
    "scott-tiny": {"model": "scott", "model_conf": {"dim": 16, "stages": 2, "matcher_dim": 8, "pool": 4},
                   "steps": 6, "segmentation_steps": 2, "positives": 2, "negatives": 2, "same_class_negatives": 0.5,
                   "loss_weights": {"seg": 1.0, "match": 1.0}, "warmup": 2, "val_pairs": 4, "val_every": 3,
                   "checkpoint_every": 2},
    # Seconds, for tests and smoke runs.
    "tiny": {"model_conf": {"dim": 32, "heads": 2, "ffn_dim": 32, "layers": "ICI", "dropout": 0.0}, "steps": 6,
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
    """The recipe ``name`` with ``overrides`` (top-level keys) applied."""
    if name not in RECIPES:
        raise SegswapError(f"unknown training config {name!r}; choose from {', '.join(RECIPES)}")
    spec = RECIPES[name]
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
