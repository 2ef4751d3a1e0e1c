"""The recipe every named recipe overrides, and the pieces several of them share.

A recipe is plain JSON-able data; :mod:`segswap.train.recipes` names the ones that are run and
:mod:`segswap.train.ablations` the ones measured against them (lab/training.md).
"""

from ..models.transformer import SegSwapTransformer

#: The transformer's options a recipe trains with: the shipped model's, read from its one source,
#: :attr:`segswap.models.SegSwapTransformer.default_conf` (width 128 and the soft-argmax flow head: what fits
#: a 2-core CPU budget, lab/training.md). The features' channels come from the backbone, the tail from TAIL.
TRANSFORMER_OPTIONS = ("dim", "heads", "ffn_dim", "layers", "dropout", "pos_weight", "flow_head", "correlation_prior",
                       "context_convs", "consensus_radius")

BASE = {
    "model": "segswap",
    "model_conf": {key: SegSwapTransformer.default_conf[key] for key in TRANSFORMER_OPTIONS},
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
    # under 0.5 (IoU at 0.5 of 0.05 where the best threshold gives 0.23; lab/training.md). Without
    # the transported-mask term: held-out IoU 0.253 vs 0.199 at 1500 steps, the same flow error.
    "loss_weights": {"mask": 1.0, "transported": 0.0, "corr": 8.0, "dice": 1.0},
    # The hard-negative stage is off: both times it ran (150 and 100 steps after the main stage) it
    # lowered held-out IoU and MSRC J (lab/training.md). The "hard-negatives" ablation turns it on.
    "hard_negatives": {"steps": 0, "pool": 500, "threshold": 0.04, "lr": 1e-5},
    "val_pairs": 100,          # held-out synthetic pairs (never trained on)
    "val_every": 150,
    "checkpoint_every": 25,
    "seed": 0,
}

#: Recipe options only some models have (added to their recipes alone, so other recipes' hashes stay put).
MODEL_RECIPE_OPTIONS = {"scott": {"segmentation_steps": 0, "same_class_negatives": 0.0},
                        # weak: the batches read features only; full: also the (A, B) pairs' masks and flows
                        "macosnet": {"supervision": "weak"}}
#: Options a recipe (or an override) may set and that are absent otherwise, for the same reason:
#: ``ema_decay`` validates, checkpoints and exports an exponential moving average of the weights.
#: ``geometry_steps`` (MaCoSNet): the run's first steps train the warp regressors alone on random warps
#: of single training images (Rocco et al. 2017).
OPTIONAL_RECIPE_OPTIONS = {"ema_decay": 0.0, "geometry_steps": 0}

#: The paper's Eq. 2 (mask, transported mask, η = 8 × correspondences) plus our batch Dice term.
EQ2_DICE = {"mask": 1.0, "transported": 1.0, "corr": 8.0, "dice": 1.0}

#: The shipped model's 3×3 grid context and patch-level cues (in BASE); the ablations were measured without
#: them (WITHOUT_GRID_CONTEXT) and name them where they have them.
GRID_CONTEXT = {key: SegSwapTransformer.default_conf[key] for key in ("context_convs", "consensus_radius")}
WITHOUT_GRID_CONTEXT = {"context_convs": 0, "consensus_radius": 0}
#: ... with Lite2's last two blocks fine-tuned inside it (features cached after block 12).
TAIL = {**GRID_CONTEXT, "tail_blocks": 2, "tail_lr_scale": 1.0}
#: BASE's loss with the per-image Jaccard terms as in the 3000-step jaccard-fp0.5 run.
JACCARD_FP05 = {**BASE["loss_weights"], "jaccard": 1.0, "false_positive": 0.5}
