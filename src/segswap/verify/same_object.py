"""Same object or not: SCOTT's verdict on two images (``segswap verify A B``).

:func:`load_verifier` returns a :class:`Verifier` holding the SCOTT weights, their backbone and input
size, and the decision threshold calibrated on held-out synthetic pairs when the weights were trained
(the threshold with the best F1 there; ``segswap export`` stores it in the weights file).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..backbone import get_backbone
from ..errors import SegswapError, UntrainedModelError
from ..io import load_image, pixels_to_tensor, resize_for_model
from ..grid import check_input_size
from ..models.weights import load_weights
from ..shipped import shipped_weights_path

class Verifier:
    """A SCOTT model with its frozen backbone, input size and decision threshold."""

    def __init__(self, model, backbone, *, size: int, threshold: float, weights: str):
        if not 0.0 < threshold < 1.0:
            raise SegswapError(f"--threshold is a probability strictly between 0 and 1, got {threshold}")
        self.model, self.backbone, self.size, self.threshold, self.weights = model.eval(), backbone, size, threshold, weights

    def features(self, image) -> torch.Tensor:
        """An image (path, PIL image or array) → its 1×C×h×w backbone features at the model's size."""
        return self.backbone(pixels_to_tensor(resize_for_model(load_image(image), self.size)))

    @torch.inference_mode()
    def verify_features(self, feats_a: torch.Tensor, feats_b: torch.Tensor) -> dict:
        """SCOTT on two feature maps → ``match`` (bool), ``probability``, ``threshold``, the two
        co-salient masks' areas (fractions of the image) and ``empty`` (no co-salient region found)."""
        out = self.model({"feats_a": feats_a, "feats_b": feats_b})
        probability = float(out["match_prob"][0])
        return {"match": probability >= self.threshold, "probability": probability, "threshold": self.threshold,
                "mask_a_area": float((out["mask_a"][0] > 0.5).float().mean()),
                "mask_b_area": float((out["mask_b"][0] > 0.5).float().mean()),
                "empty": bool(out["empty"][0]), "weights": self.weights}

    def verify(self, image_a, image_b) -> dict:
        """Whether ``image_a`` and ``image_b`` show the same object; see :meth:`verify_features`."""
        return self.verify_features(self.features(image_a), self.features(image_b))


def load_verifier(weights=None, *, threshold: float | None = None, size: int | None = None, runtime: str = "auto") -> Verifier:
    """The SCOTT verifier from ``weights`` (default: the shipped weights). ``threshold`` overrides the
    calibrated one; ``size`` the input size (default: the training size)."""
    path = Path(weights) if weights is not None else shipped_weights_path("scott")
    if path is None:
        raise UntrainedModelError("no SCOTT weights are installed; pass --weights from `segswap train --config scott` "
                                  "and `segswap export`")
    model, config = load_weights(path)
    if config["model"] != "scott":
        raise SegswapError(f"{path}: holds a {config['model']!r} model; `segswap verify` needs SCOTT weights")
    calibrated = config.get("info", {}).get("validation", {}).get("val_threshold")
    if threshold is None and calibrated is None:
        raise SegswapError(f"{path}: no calibrated threshold recorded; pass --threshold")
    size = check_input_size(size or config["size"])
    return Verifier(model, get_backbone(config["backbone"], runtime), size=size,
                    threshold=float(calibrated if threshold is None else threshold), weights=path.name)
