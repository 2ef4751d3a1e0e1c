"""Weights files: safetensors tensors plus a small JSON config in the safetensors header.

The config (key ``segswap`` of the header metadata) holds ``format``, ``model`` (a name in
:data:`segswap.models.ALL_MODEL_CLASSES`), ``conf`` (the model's options), ``backbone``, ``size`` (input
long side it was trained at) and ``recipe`` (a hash of the training recipe), plus free-form ``info``.
Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import SegswapError
from ..io.files import atomic_path
from . import ALL_MODEL_CLASSES

FORMAT_VERSION = 1


def save_weights(path: str | os.PathLike, model, *, backbone: str, size: int, recipe: str = "", info: dict | None = None) -> None:
    """Write ``model``'s tensors and config to ``path`` atomically (temp file + rename)."""
    name = next((n for n, cls in ALL_MODEL_CLASSES.items() if type(model) is cls), None)
    if name is None:
        raise ValueError(f"{type(model).__name__} is not a registered model class")
    config = {"format": FORMAT_VERSION, "model": name, "conf": model.conf, "backbone": backbone, "size": size,
              "recipe": recipe, "info": info or {}}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"segswap": json.dumps(config, sort_keys=True)})


def weights_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file's bytes: what a calibration made with it is keyed by."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_config(path: str | os.PathLike) -> dict:
    """The JSON config stored in a weights file."""
    path = Path(path)
    if not path.is_file():
        raise SegswapError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise SegswapError(f"{path}: not a safetensors weights file ({str(err).splitlines()[0]})") from None
    if "segswap" not in meta:
        raise SegswapError(f"{path}: safetensors file without a segswap config (was it written by `segswap export`?)")
    try:
        config = json.loads(meta["segswap"])
    except json.JSONDecodeError:
        raise SegswapError(f"{path}: its segswap config is not JSON") from None
    if not isinstance(config, dict):
        raise SegswapError(f"{path}: its segswap config is a {type(config).__name__}, not a mapping")
    if config.get("format") != FORMAT_VERSION:
        raise SegswapError(f"{path}: weights format {config.get('format')} is not supported (expected {FORMAT_VERSION})")
    if config.get("model") not in ALL_MODEL_CLASSES:
        raise SegswapError(f"{path}: unknown model {config.get('model')!r}")
    if not isinstance(config.get("conf"), dict):
        raise SegswapError(f"{path}: the model options ('conf') are not a mapping")
    if not isinstance(config.get("backbone"), str) or not isinstance(config.get("size"), int):
        raise SegswapError(f"{path}: the config needs a backbone name and an integer size")
    return config


def load_weights(path: str | os.PathLike):
    """Build the model a weights file describes and load its tensors → ``(model, config)``, in eval mode."""
    config = read_config(path)
    model = build_model(config["model"], config["conf"], str(path))
    state = load_file(str(path), device="cpu")
    check_shapes(model, state, path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SegswapError(f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), config


def build_model(name: str, conf: dict, source: str):
    """Model ``name`` with options ``conf``, as a weights file or a run's recipe gives them; options the
    model does not take are a one-line :class:`SegswapError` naming ``source``."""
    try:
        return ALL_MODEL_CLASSES[name](**conf)
    except (TypeError, ValueError, SegswapError) as err:
        raise SegswapError(f"{source}: the {name} model cannot be built from its options ({err})") from None


def check_shapes(model, state: dict, source) -> None:
    """A one-line :class:`SegswapError` for the first tensor of ``state`` whose shape the model's differs
    from (load_state_dict would raise a multi-line RuntimeError)."""
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise SegswapError(f"{source}: tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the model "
                           f"expects {tuple(expected[wrong[0]].shape)}")
