"""What every backbone shares: the call contract, L2 normalisation, features of one image, the on-disk
cache, ONNX sessions."""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SegswapError
from ..grid import STRIDE
from ..io.images import pixels_to_tensor, resize_for_model


class Backbone(ABC):
    """A frozen, inference-only feature extractor giving L2-normalised stride-16 maps.

    Subclasses set ``name``, ``channels`` and ``runtime`` and implement :meth:`_features`.
    """

    name: str
    channels: int
    stride: int = STRIDE
    runtime: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """images: B×3×H×W float32 RGB in [0, 1], H and W multiples of 16.

        Returns B×C×(H/16)×(W/16) float32, L2-normalised over C at every position. The features are
        computed under ``torch.inference_mode()``; the result is an ordinary tensor, so it may feed a
        layer that is being trained.
        """
        self._check(images)
        with torch.inference_mode():
            features = F.normalize(self._features(images.float()), dim=1)
        # Inference tensors cannot be saved for backward; a clone outside inference mode can.
        return features.clone()

    @abstractmethod
    def _features(self, images: torch.Tensor) -> torch.Tensor:
        """B×3×H×W in [0, 1] -> B×C×H/16×W/16, not yet normalised."""

    def _check(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise SegswapError(f"{self.name}: expected a B×3×H×W image tensor, got {shape}")
        h, w = images.shape[-2:]
        if h % self.stride or w % self.stride or h == 0 or w == 0:
            raise SegswapError(f"{self.name}: image sides must be positive multiples of {self.stride}, got {h}×{w}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, channels={self.channels}, runtime={self.runtime!r})"


def backbone_tokens(backbone: Backbone, image: np.ndarray, size: int) -> torch.Tensor:
    """C×h×w L2-normalised features of an RGB uint8 image resized to long side ``size``."""
    return backbone(pixels_to_tensor(resize_for_model(image, size)))[0]


def cache_dir() -> Path:
    """Where derived model files go: ``$XDG_CACHE_HOME/segswap``, else ``~/.cache/segswap``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "segswap"


def cached_file(filename: str, write: Callable[[Path], None]) -> Path:
    """Return ``cache_dir() / filename``, first creating it with ``write(path)`` if it is missing.

    ``write`` fills a temporary file in the same folder that is then renamed into place, so a
    concurrent or interrupted run never sees half a file. Raises ``OSError`` if the cache is not
    writable.
    """
    target = cache_dir() / filename
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{filename}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


#: The ONNX opset of the graphs exported here.
ONNX_OPSET = 17


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str]) -> None:
    """Write ``module`` (one B×C×H×W input, one output map; eval mode) to ``path`` as an ONNX graph whose
    batch and grid sides are free; ``names``: the input's and the output's."""
    import warnings

    with warnings.catch_warnings():
        # The exporter warns about constant folding it skips; the graph is correct without it.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=[names[0]], output_names=[names[1]],
                          dynamic_axes={names[0]: {0: "batch", 2: "height", 3: "width"},
                                        names[1]: {0: "batch", 2: "rows", 3: "cols"}},
                          opset_version=ONNX_OPSET,
                          dynamo=False)  # the TorchScript exporter needs no onnxscript and handles these graphs


def exported_onnx_model(filename: str, module: torch.nn.Module, example: torch.Tensor, names: tuple[str, str],
                        label: str) -> OnnxModel:
    """A session on ``module`` exported by :func:`export_onnx` once, as ``filename`` in the cache folder; a
    failed export is one :class:`~segswap.errors.SegswapError` naming ``label``."""
    try:
        path = cached_file(filename, lambda target: export_onnx(module, example, target, names))
    except Exception as err:  # export failures surface as many types (OSError, RuntimeError, ...)
        raise SegswapError(f"{label}: exporting to ONNX failed ({type(err).__name__}: {err})") from err
    return OnnxModel(path, label)


def cached_onnx_model(filename: str, build: Callable[[], object], label: str) -> OnnxModel:
    """A session on the ONNX model that ``build()`` makes (an ``onnx.ModelProto``), saved once as
    ``filename`` in the cache folder; without a writable cache it is built in memory at every start."""
    import onnx

    try:
        path = cached_file(filename, lambda target: onnx.save(build(), str(target)))
    except OSError:
        return OnnxModel(build().SerializeToString(), label)
    return OnnxModel(path, label)


#: Set by :func:`limit_threads`: the threads an ONNX session may use, else every available core.
_thread_limit: int | None = None


def limit_threads(threads: int | None) -> None:
    """Cap the threads of ONNX sessions built from now on: a cluster worker shares its machine's cores
    with other workers, and onnxruntime's spinning threads slow everyone when the cores are oversubscribed."""
    global _thread_limit
    _thread_limit = threads


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, where the OS has one), or its :func:`limit_threads`."""
    if _thread_limit is not None:
        return _thread_limit
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class OnnxModel:
    """An onnxruntime session with one input and one output, called with and returning torch tensors."""

    def __init__(self, model: Path | bytes, label: str):
        try:
            import onnxruntime as ort
        except ImportError:
            raise SegswapError(f"{label}: the ONNX runtime needs onnxruntime (pip install onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = available_cores()
        options.inter_op_num_threads = 1
        # threads that spin after a run take the cores from the PyTorch work that follows it
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # keep onnxruntime's warnings off the user's terminal
        source = str(model) if isinstance(model, Path) else model
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own, unexported exception types
            raise SegswapError(f"{label}: onnxruntime cannot load the model ({err})") from err
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        (output,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(output)
