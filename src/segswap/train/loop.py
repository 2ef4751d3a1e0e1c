"""The training loop of every model: positives and negatives from the feature cache, Adam with warm-up
and cosine decay, then a hard-negative stage; atomic checkpoints, resume, CSV logs and validation.
What differs between models (batches, loss, validation) is a :class:`~.matcher_training.PairTraining`,
a :class:`~.scott_training.ScottTraining` or a :class:`~.macosnet_training.MacosnetTraining`.

A run folder holds ``recipe.json``, ``checkpoint.pt`` (model, optimiser, step and random states, and
the weights' moving average if the recipe keeps one; read back with ``torch.load(weights_only=True)``),
``log.csv`` (losses per step), ``val.csv`` (held-out metrics) and ``curves.png``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..backbone import list_backbones
from ..errors import SegswapError
from ..evaluation.coseg import CosegPairValidation
from ..io.files import atomic_path, write_bytes_atomic
from ..models import ALL_MODEL_CLASSES
from ..models.tail import tail_input_backbone
from ..models.transformer import SegSwapTransformer
from ..models.weights import build_model, check_shapes, load_weights, read_config, weights_digest
from ..synth.cache import FeatureCache, build_cache
from ..synth.reader import listed_pairs
from .macosnet_training import MacosnetTraining
from .mining import mine_hard_negatives
from .matcher_training import PairTraining
from .recipes import get_recipe, recipe_hash
from .scott_training import ScottTraining

LOG_FIELDS = ["step", "stage", "lr", "mask", "transported", "corr", "dice", "jaccard", "false_positive", "match_nll", "seg", "match",
              "matching", "cycle", "transitivity", "contrast", "task", "presence", "warp", "total", "seconds"]
#: What the loop does for each model (its batches' negatives, loss, validation); PairTraining otherwise.
TRAININGS = {"scott": ScottTraining, "macosnet": MacosnetTraining}


def learning_rate(step: int, recipe: dict) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr_final`` at the last main step."""
    if step < recipe["warmup"]:
        return recipe["lr"] * (step + 1) / recipe["warmup"]
    span = max(1, recipe["steps"] - recipe["warmup"])
    t = min(1.0, (step - recipe["warmup"]) / span)
    return recipe["lr_final"] + 0.5 * (recipe["lr"] - recipe["lr_final"]) * (1 + math.cos(math.pi * t))


def split_indices(n: int, val_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded split of the cache into training and held-out validation pairs."""
    if n < val_pairs + 2:
        raise SegswapError(f"only {n} pairs: need more than {val_pairs} held-out pairs plus 2 for training")
    order = np.random.default_rng([seed, 12345]).permutation(n)
    return np.sort(order[val_pairs:]), np.sort(order[:val_pairs])


class Run:
    """One training run in a folder: state, checkpointing and logs."""

    def __init__(self, run_dir: Path, recipe: dict, channels: int):
        self.dir = run_dir
        self.recipe = recipe
        cls = ALL_MODEL_CLASSES[recipe["model"]]
        torch.manual_seed(recipe["seed"])
        self.model = cls(input_dim=channels, **recipe["model_conf"])
        params = self.model.parameter_groups() if hasattr(self.model, "parameter_groups") else self.model.parameters()
        self.optimizer = torch.optim.Adam(params, lr=recipe["lr"], betas=tuple(recipe["betas"]))
        self.rng = np.random.default_rng(recipe["seed"])
        self.step = 0
        self.hard_pool: np.ndarray | None = None
        decay = recipe.get("ema_decay", 0.0)
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True) if decay else None

    @property
    def final_model(self) -> torch.nn.Module:
        """What is validated and exported: the moving average where the recipe keeps one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def total_steps(self) -> int:
        return self.recipe["steps"] + self.recipe["hard_negatives"]["steps"]

    def save(self) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "hard_pool": torch.from_numpy(self.hard_pool) if self.hard_pool is not None else torch.zeros(0, 2, dtype=torch.long),
            "has_hard_pool": self.hard_pool is not None,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        with atomic_path(self.dir / "checkpoint.pt") as tmp:
            torch.save(state, tmp)

    def start_from(self, weights: Path, sha256: str) -> None:
        """Load the model tensors of an exported weights file (the recipe's ``init``)."""
        if not weights.is_file() or weights_digest(weights) != sha256:
            raise SegswapError(f"{weights}: the run's initial weights are missing or changed since the run began")
        model, _ = load_weights(weights)
        # A tail model started from a frozen-feature one: its tail keeps the pretrained network's blocks.
        missing, unexpected = self.model.load_state_dict(model.state_dict(), strict=False)
        if unexpected or any(not key.startswith("tail.") for key in missing):
            raise SegswapError(f"{weights}: weights do not fit the run's model (missing {missing[:3]}, unexpected {unexpected[:3]})")
        if self.ema is not None:
            self.ema.module.load_state_dict(self.model.state_dict())

    def load(self) -> None:
        state = read_checkpoint(self.dir / "checkpoint.pt")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.hard_pool = state["hard_pool"].numpy() if state["has_hard_pool"] else None
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])


def _truncate_csv(path: Path, last_step: int) -> None:
    """Drop rows logged after the checkpoint a resumed run restarts from."""
    if not path.is_file():
        return
    rows = list(csv.reader(path.read_text().splitlines()))
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= last_step]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(kept)
    write_bytes_atomic(path, buffer.getvalue().encode())


def _append_csv(path: Path, fields: list[str], row: dict) -> None:
    new = not path.is_file()
    if not new:  # keep the columns the file was started with (a run resumed by a newer version)
        fields = next(csv.reader([path.open().readline()]))
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)


def train(pairs_dirs, run_dir, config: str = "default", steps: int | None = None, resume: bool = False,
          show_progress: bool = True, overrides: dict | None = None, val_coseg=None, init=None) -> dict:
    """Train (or resume training) a pair model on synth folders; return the last validation metrics.

    ``overrides`` replaces top-level recipe options (e.g. ``{"size": 320}``) of a new run.
    ``init``: a weights file (``segswap export``) a new run starts from instead of a random model; it
    must hold the recipe's model with the same options, backbone and size — or, for a recipe that trains
    a backbone tail, the same model on the full network's features (the tail then starts as the
    pretrained blocks). Its SHA-256 goes into the
    recipe, so the exported weights' recipe hash names the starting point too.
    ``val_coseg``: a co-segmentation benchmark folder for pairwise validation (``val_coseg.csv``);
    it is only ever evaluated on, never trained on.
    """
    run_dir = Path(run_dir)
    recipe_path = run_dir / "recipe.json"
    if resume:
        if not recipe_path.is_file():
            raise SegswapError(f"{run_dir}: nothing to resume (no recipe.json)")
        recipe = json.loads(recipe_path.read_text())
        if steps is not None:
            recipe["steps"] = steps
    else:
        if (run_dir / "checkpoint.pt").exists() or recipe_path.exists():
            raise SegswapError(f"{run_dir}: already holds a run; pass --resume to continue it, or choose a new folder")
        recipe = get_recipe(config, **{**(overrides or {}), "steps": steps})
        for folder in pairs_dirs:  # before the run folder is claimed: a wrong folder leaves nothing behind
            if not listed_pairs(folder):
                raise SegswapError(f"{folder}: holds no pairs (did its `segswap synth` run fail?)")
        recipe["pairs"] = sorted(str(Path(p).resolve()) for p in pairs_dirs)
        if init is not None:
            recipe["init"] = initial_weights_record(init, recipe)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(recipe_path, json.dumps(recipe, indent=1).encode())

    caches = [build_cache(Path(p), recipe["backbone"], recipe["size"], show_progress=show_progress) for p in recipe["pairs"]]
    cache = FeatureCache(caches)
    train_idx, val_idx = split_indices(len(cache), recipe["val_pairs"], recipe["seed"])

    training = TRAININGS.get(recipe["model"], PairTraining)(recipe, cache, train_idx, val_coseg)
    coseg_validation = CosegPairValidation(val_coseg, recipe["backbone"], recipe["size"]) if val_coseg else None
    run = Run(run_dir, recipe, cache.channels)
    if resume and (run_dir / "checkpoint.pt").is_file():
        run.load()
    elif "init" in recipe:
        run.start_from(Path(recipe["init"]["path"]), recipe["init"]["sha256"])
    _truncate_csv(run_dir / "log.csv", run.step - 1)
    _truncate_csv(run_dir / "val.csv", run.step)
    _truncate_csv(run_dir / "val_coseg.csv", run.step)

    metrics = {}
    bar = tqdm(total=run.total_steps, initial=run.step, desc="training", unit="step", disable=not show_progress)
    while run.step < run.total_steps:
        stage = training.stage(run.step)
        hard_stage = run.step >= recipe["steps"]
        if hard_stage and run.hard_pool is None:
            run.model.eval()
            run.hard_pool = mine_hard_negatives(run.model, cache, train_idx, run.rng, recipe["hard_negatives"])
            run.save()
        lr = recipe["hard_negatives"]["lr"] if hard_stage else learning_rate(run.step, recipe)
        for group in run.optimizer.param_groups:
            # plain groups (models without parameter_groups, old checkpoints) have no scale and no name
            group["lr"] = lr * group.get("lr_scale", 1.0) * training.lr_scale(stage, group.get("name"))
        inputs, target = training.batch(run.rng, stage, run.hard_pool)
        start = time.perf_counter()
        run.model.train()
        terms = training.loss(run.model(inputs), target, stage)
        run.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        row = {k: f"{float(v.detach()):.5f}" for k, v in terms.items()}
        row.update(step=run.step, stage=stage, lr=f"{lr:.3g}", seconds=f"{time.perf_counter() - start:.3f}")
        _append_csv(run_dir / "log.csv", LOG_FIELDS, row)
        run.step += 1
        bar.update(1)
        bar.set_postfix(training.progress(row))
        last = run.step == run.total_steps
        if run.step % recipe["val_every"] == 0 or last:
            metrics = {"step": run.step, **training.validate(run.final_model, val_idx)}
            if coseg_validation is not None:
                groups = {"step": run.step, **coseg_validation(run.final_model)}
                _append_csv(run_dir / "val_coseg.csv", list(groups), groups)
                metrics["coseg_J"] = groups["mean"]
            _append_csv(run_dir / "val.csv", list(metrics), metrics)
            bar.write(f"step {run.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "step"))
        if run.step % recipe["checkpoint_every"] == 0 or last:
            run.save()
    bar.close()
    from ..viz.curves import plot_training_curves

    plot_training_curves(run_dir / "log.csv", run_dir / "val.csv", run_dir / "curves.png")
    return metrics or _last_row(run_dir / "val.csv")


def initial_weights_record(path, recipe: dict) -> dict:
    """``recipe["init"]`` for a run starting from the weights file ``path``: its path and SHA-256, after
    checking that it holds the recipe's model, options, backbone and size."""
    path = Path(path).resolve()
    config = read_config(path)
    expected = {"model": recipe["model"], "backbone": recipe["backbone"], "size": recipe["size"]}
    found = {key: config[key] for key in expected}
    conf = dict(config["conf"])
    tail_blocks = recipe["model_conf"].get("tail_blocks", 0)
    if tail_blocks and not conf.get("tail_blocks"):
        # A frozen-feature model can start a tail model: the tail, from the pretrained network, continues
        # the cut before it to the very features the frozen model was trained on.
        network = recipe["model_conf"].get("tail_network", SegSwapTransformer.default_conf["tail_network"])
        if config["backbone"] == network and recipe["backbone"] == tail_input_backbone(network, tail_blocks):
            found["backbone"] = recipe["backbone"]
            conf.update({k: v for k, v in recipe["model_conf"].items() if k.startswith("tail_")})
    if found != expected:
        raise SegswapError(f"{path}: --init weights hold {found}, the recipe trains {expected}")
    options = {k: v for k, v in conf.items() if k in recipe["model_conf"]}
    if options != recipe["model_conf"]:
        different = sorted(k for k in recipe["model_conf"] if options.get(k) != recipe["model_conf"][k])
        raise SegswapError(f"{path}: --init weights differ from the recipe's model in {', '.join(different)}")
    return {"path": str(path), "sha256": weights_digest(path)}


def _last_row(path: Path) -> dict:
    rows = list(csv.DictReader(path.read_text().splitlines())) if path.is_file() else []
    return {k: float(v) for k, v in rows[-1].items()} if rows else {}


def read_checkpoint(path: Path) -> dict:
    """A run's checkpoint: tensors and plain values only (``weights_only``); anything else, such as a
    pickled object, is a one-line :class:`SegswapError`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own note on old pickle protocols; the error says it all
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SegswapError(f"{path}: not a segswap training checkpoint ({first})") from None
    if not isinstance(state, dict) or not {"model", "step"} <= set(state):
        raise SegswapError(f"{path}: not a segswap training checkpoint (no model state and step)")
    return state


def export(run_dir, out_path) -> dict:
    """Write a finished (or interrupted) run's model as a weights file; return its config."""
    from ..models.weights import save_weights

    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").is_file():
        raise SegswapError(f"{run_dir}: no checkpoint.pt (is it a `segswap train` run folder?)")
    recipe = json.loads((run_dir / "recipe.json").read_text())
    state = read_checkpoint(run_dir / "checkpoint.pt")
    channels = next(b["channels"] for b in list_backbones() if b["name"] == recipe["backbone"])
    model = build_model(recipe["model"], {"input_dim": channels, **recipe["model_conf"]}, str(run_dir / "recipe.json"))
    if "ema" in state:  # AveragedModel's state: the averaged model under "module.", and its count
        tensors = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    else:
        tensors = state["model"]
    check_shapes(model, tensors, run_dir / "checkpoint.pt")
    model.load_state_dict(tensors)
    info = {"steps": int(state["step"]), "recipe_name": recipe["name"], "validation": _last_row(run_dir / "val.csv")}
    save_weights(out_path, model.eval(), backbone=recipe["backbone"], size=recipe["size"], recipe=recipe_hash(recipe), info=info)
    return read_config(out_path)
