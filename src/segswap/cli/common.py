"""What the command modules share: help texts repeated across commands, the argument checks every
command runs first, ``--json`` writing, and the one policy for loading a pair model.

Nothing here imports torch, OpenCV or onnxruntime: commands check their arguments (segswap.io.paths,
segswap.grid) before they load a model.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Optional

import typer

from ..grid import DEFAULT_SIZE, MAX_INPUT_SIZE, STRIDE, check_input_size
from ..cluster.engine_options import SCHEDULER_HELP, SCRATCH_HELP, WORKERS_HELP
from ..io.files import write_bytes_atomic
from ..errors import SegswapError
from ..io.paths import check_input_file, check_input_folder, check_output_file, check_output_folder
from ..shipped import check_scales, shipped_input_size

MODEL_HELP = ("Pair model: segswap (default, the transformer), ncnet (the NC-Net variant), macosnet (MaCoSNet: a smooth "
              "warp and co-segmentation of two instances of a category) or correlation (training-free).")
WEIGHTS_HELP = "Weights file from `segswap export`."
SIZE_HELP = (f"Model input long side in px, a multiple of {STRIDE} up to {MAX_INPUT_SIZE} (default: the weights' own, "
             f"{shipped_input_size() or 'none shipped'} for the shipped ones; {DEFAULT_SIZE} for --model correlation).")
#: --size of the commands that compute backbone features only (align, eval align).
FEATURE_SIZE_HELP = f"Long side in px the features are computed at, a multiple of {STRIDE} (default {DEFAULT_SIZE})."
#: --size of the eval commands, whose default is the model's own.
EVAL_SIZE_HELP = f"Input long side in px, a multiple of {STRIDE}."
BACKBONE_HELP = "Feature backbone (see `segswap backbones`)."
FLIP_HELP = "Also run each pair mirrored and average (test-time augmentation)."
REPORT_HELP = "Write an HTML report (self-contained)."
JSON_HELP = "Also write the results as JSON."


def load_matcher(model: Optional[str], weights: Optional[Path], *, backbone: Optional[str] = None,
                 size: Optional[int] = None):
    """The pair model a command asks for with --model/--weights, and every command's one fallback: with
    neither option and no shipped SegSwap weights, the training-free correlation model, with a note
    saying so. (SCOTT has no training-free stand-in: `segswap verify` without its weights is an error.)"""
    from ..pair import DEFAULT_MODEL, load, shipped_weights_path

    if model is None and weights is None and shipped_weights_path(DEFAULT_MODEL) is None:
        typer.echo("note: no trained SegSwap weights are installed yet; using the training-free 'correlation' "
                   "model (pass --model/--weights to choose).", err=True)
        model = "correlation"
    return load(model, weights, backbone=backbone, size=size)


def check_arguments(*, files=(), folders=(), output_folders=(), output_files=(), weights=None, size=None,
                    min_size: int = 32, counts=()) -> None:
    """Refuse, in one line and before any model loads, what would fail only after the work: missing
    inputs, outputs that cannot be written (``(path, option)`` pairs), a bad --size, a count below 1
    (``(value, option)`` pairs: --top, --top-k, ...). None entries are options not given."""
    for value, option in counts:
        if value is not None and value < 1:
            raise SegswapError(f"{option} must be at least 1, got {value}")
    for path in files:
        if path is not None:
            check_input_file(path)
    for path in folders:
        if path is not None:
            check_input_folder(path)
    if weights is not None:
        check_input_file(weights, "weights file")
    check_input_size(size, min_size)
    for path, option in output_folders:
        if path is not None:
            check_output_folder(path, option)
    for path, option in output_files:
        if path is not None:
            check_output_file(path, option)


def check_finite(value: Optional[float], option: str) -> None:
    if value is not None and not math.isfinite(value):
        raise SegswapError(f"{option} must be a number, not {value}")


def parse_box(text: str, option: str = "--box") -> tuple[int, int, int, int]:
    """``"x0,y0,x1,y1"`` (pixels; numbers are rounded) → a tuple of ints, or a one-line refusal unless
    they are four numbers that span an area. Whether the box lies inside its image is for the work to
    say: it needs the image decoded."""
    try:
        values = tuple(int(round(float(v))) for v in text.split(","))
    except (ValueError, OverflowError):  # OverflowError: inf
        values = ()
    if len(values) != 4:
        raise SegswapError(f"{option} must be x0,y0,x1,y1 in pixels, got {text!r}")
    x0, y0, x1, y1 = values
    if x0 == x1 or y0 == y1:
        raise SegswapError(f"{option} {text} has no area")
    return values


def parse_scales(text: str) -> tuple[float, ...]:
    """``"0.5,1,2"`` → (0.5, 1.0, 2.0), for ``--scales``; each within segswap.shipped.SCALE_RANGE."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise SegswapError(f"--scales takes numbers separated by commas, e.g. 0.5,1,2; got {text!r}") from None
    return check_scales(scales)


def write_json(path: Path, data) -> None:
    """Write a command's --json output atomically."""
    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def scheduler_option():
    return typer.Option(None, "--scheduler", help=SCHEDULER_HELP)


def workers_option():
    return typer.Option(None, "--workers", help=WORKERS_HELP)


def scratch_option():
    return typer.Option(None, "--scratch", help=SCRATCH_HELP)


def cluster_engine(scheduler: Optional[str], workers: Optional[int], scratch: Optional[Path] = None):
    """A context giving the Dask engine --scheduler/--workers ask for, connected before any work (an
    unreachable scheduler is one line, exit 2), or None without them — and then Dask is never imported."""
    if scheduler is None and workers is None:
        return contextlib.nullcontext(None)
    from ..cluster.engine import open_engine

    return open_engine(scheduler, workers, scratch)
