"""``segswap train`` and ``segswap export``: a training run in a folder, and its model as weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import SegswapError
from .common import check_arguments


def train_command(
    pairs: list[Path] = typer.Option(..., "--pairs", help="A `segswap synth` output folder (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: recipe, checkpoint, logs, curves."),
    config: str = typer.Option("default", help="Training recipe name (docs/training.md lists them)."),
    steps: Optional[int] = typer.Option(None, help="Main-stage steps (overrides the recipe)."),
    size: Optional[int] = typer.Option(None, help="Input size the pairs were made at (overrides the recipe)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    val_coseg: Optional[Path] = typer.Option(None, help="Co-segmentation benchmark for pairwise validation "
                                                         "(images/<group>/, groundtruth/<group>/); never trained on."),
    model_option: list[str] = typer.Option([], "--model-option", help="KEY=VALUE overriding one of the recipe's "
                                           "model options, VALUE as JSON (e.g. tail_lr_scale=0.1; repeatable)."),
    seed: Optional[int] = typer.Option(None, help="Random seed of initialisation, batches and the held-out split "
                                                  "(overrides the recipe's 0; for replicate runs)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from these weights (`segswap export`) instead of "
                                        "a random model: fine-tuning; same model, options, backbone and size (or a "
                                        "frozen-feature model for a tail recipe: the tail starts pretrained)."),
):
    """Train the cross-image transformer on synthetic pairs (features are cached inside each pairs folder)."""
    check_arguments(folders=[*pairs, val_coseg], files=[init], size=size, output_folders=[(out, "--out")])
    from ..train.loop import train

    if (model_option or seed is not None or init is not None) and resume:
        raise SegswapError("--model-option, --seed, --init: a resumed run keeps the options it was started with")
    overrides = {"size": size, "seed": seed, "model_conf": dict(_key_value(o) for o in model_option) or None}
    metrics = train(pairs, out, config=config, steps=steps, resume=resume, overrides=overrides, val_coseg=val_coseg,
                    init=init)
    typer.echo("done: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "step"))


def _key_value(option: str) -> tuple[str, object]:
    key, sep, value = option.partition("=")
    if not sep or not key:
        raise SegswapError(f"--model-option {option!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word is a string


def export_command(
    run_dir: Path = typer.Argument(..., help="A `segswap train` run folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Weights file to write (.safetensors)."),
):
    """Write a run's model as a safetensors weights file that `segswap.load(weights=...)` reads."""
    check_arguments(folders=[run_dir], output_files=[(out, "--out")])
    from ..train.loop import export

    config = export(run_dir, out)
    typer.echo(f"wrote {out} (model {config['model']}, backbone {config['backbone']}, size {config['size']}, "
               f"recipe {config['recipe']})")


COMMANDS = {"train": train_command, "export": export_command}
