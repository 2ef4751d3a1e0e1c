"""What the command modules share: the app class behind every command's help, option help texts, and
the pair model a command asks for.

Nothing here imports torch, OpenCV or onnxruntime: commands check their arguments (segswap.io.paths,
segswap.grid) before they load a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperCommand, TyperGroup

from .grid import MAX_INPUT_SIZE
from .shipped import shipped_input_size

MODEL_HELP = "Pair model: segswap (default, the transformer), ncnet (the NC-Net variant) or correlation (training-free)."
WEIGHTS_HELP = "Weights file from `segswap export`."
SIZE_HELP = (f"Model input long side in px, a multiple of 16 up to {MAX_INPUT_SIZE} (default: the weights' own, "
             f"{shipped_input_size() or 'none shipped'} for the shipped ones; 480 for --model correlation).")


def _plain_help(params: list) -> list:
    """Flags without a type column (``--flip``, not ``--flip <bool>``)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help shows flags without ``<bool>`` and arguments as ``IMAGE_A``, not ``{image_a}``."""

    def get_params(self, ctx):
        return _plain_help(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.name.upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(TyperGroup):
    """A command group with the same help conventions as :class:`Command`."""

    def get_params(self, ctx):
        return _plain_help(super().get_params(ctx))


class App(typer.Typer):
    """``typer.Typer`` whose commands are :class:`Command` and groups :class:`Group`."""

    def __init__(self, **kwargs):
        super().__init__(cls=Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, **kwargs)

    def command(self, *args, **kwargs):
        return super().command(*args, cls=Command, **kwargs)


def load_matcher(model: Optional[str], weights: Optional[Path], *, backbone: Optional[str] = None,
                 size: Optional[int] = None):
    """The pair model asked for; with neither --model nor --weights and no shipped SegSwap weights, the
    training-free correlation model, with a note saying so."""
    from .pair import DEFAULT_MODEL, load, shipped_weights_path

    if model is None and weights is None and shipped_weights_path(DEFAULT_MODEL) is None:
        typer.echo("note: no trained SegSwap weights are installed yet; using the training-free 'correlation' "
                   "model (pass --model/--weights to choose).", err=True)
        model = "correlation"
    return load(model, weights, backbone=backbone, size=size)


def check_arguments(*, files=(), folders=(), output_folders=(), output_files=(), weights=None, size=None,
                    min_size: int = 32) -> None:
    """Refuse, in one line and before any model loads, what would fail only after the work: missing
    inputs, outputs that cannot be written (``(path, option)`` pairs), a bad --size. None entries are
    options not given."""
    from .grid import check_input_size
    from .io.paths import check_input_file, check_input_folder, check_output_file, check_output_folder

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


def write_json(path: Path, data) -> None:
    """Write a command's --json output atomically."""
    import json

    from .io.files import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
