"""Same object or not: SCOTT's verdict on two images (``segswap verify A B``).

:func:`load_verifier` returns a :class:`Verifier` holding the SCOTT weights, their backbone and input
size, and the decision threshold. The threshold comes from a calibration file written by
`segswap eval calibrate-verify` (the package's ``data/verify_calibration.json``, one record per SCOTT
weights file by its SHA-256): the lowest probability at which "match" reaches the stated precision on
held-out synthetic pairs across conditions (night, haze, engraving, ...) against as many non-matching
pairs, half of them the same class of object. Weights without such a record fall back to the threshold
their training recorded (best F1 on same-condition held-out pairs; ``segswap export`` stores it), and
the verdict says which (``threshold_source``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..backbone import get_backbone
from ..errors import SegswapError, UntrainedModelError
from ..io import load_image, pixels_to_tensor, resize_for_model
from ..grid import check_input_size
from ..models.weights import load_weights, weights_digest
from ..shipped import shipped_weights_path, verify_calibrations

class Verifier:
    """A SCOTT model with its frozen backbone, input size and decision threshold."""

    def __init__(self, model, backbone, *, size: int, threshold: float, weights: str, weights_sha256: str | None = None,
                 threshold_source: str = "given", operating_point: dict | None = None):
        if not 0.0 < threshold < 1.0:
            raise SegswapError(f"--threshold is a probability strictly between 0 and 1, got {threshold}")
        self.model, self.backbone, self.size, self.threshold, self.weights = model.eval(), backbone, size, threshold, weights
        self.weights_sha256, self.threshold_source, self.operating_point = weights_sha256, threshold_source, operating_point

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
                "empty": bool(out["empty"][0]), "weights": self.weights, "threshold_source": self.threshold_source,
                "operating_point": self.operating_point}

    def verify(self, image_a, image_b) -> dict:
        """Whether ``image_a`` and ``image_b`` show the same object; see :meth:`verify_features`."""
        return self.verify_features(self.features(image_a), self.features(image_b))


def load_verifier(weights=None, *, threshold: float | None = None, size: int | None = None, runtime: str = "auto",
                  calibrations: list[dict] | None = None) -> Verifier:
    """The SCOTT verifier from ``weights`` (default: the shipped weights). ``threshold`` overrides the
    calibrated one; ``size`` the input size (default: the training size); ``calibrations`` the records
    searched for these weights (default: the package's verify_calibration.json)."""
    path = Path(weights) if weights is not None else shipped_weights_path("scott")
    if path is None:
        raise UntrainedModelError("no SCOTT weights are installed; pass --weights from `segswap train --config scott` "
                                  "and `segswap export`")
    model, config = load_weights(path)
    if config["model"] != "scott":
        raise SegswapError(f"{path}: holds a {config['model']!r} model; `segswap verify` needs SCOTT weights")
    digest = weights_digest(path)
    size = check_input_size(size or config["size"])
    source, operating_point = "given", None
    if threshold is None:
        threshold, source, operating_point = calibrated_threshold(digest, config, size, calibrations)
        if threshold is None:
            raise SegswapError(f"{path}: no calibrated threshold recorded; pass --threshold or run "
                               "`segswap eval calibrate-verify`")
    return Verifier(model, get_backbone(config["backbone"], runtime), size=size, threshold=float(threshold),
                    weights=path.name, weights_sha256=digest, threshold_source=source, operating_point=operating_point)


def calibrated_threshold(digest: str, config: dict, size: int,
                         calibrations: list[dict] | None = None) -> tuple[float | None, str, dict | None]:
    """The threshold for the weights with SHA-256 ``digest`` at input ``size``: from their
    `segswap eval calibrate-verify` record, else from their training's validation; with where it came
    from and the operating point measured there."""
    for record in verify_calibrations() if calibrations is None else calibrations:
        if record["weights_sha256"] == digest and record["size"] == size:
            point = {key: record[key] for key in ("precision", "recall", "average_precision", "target_precision")}
            return float(record["threshold"]), "calibrate-verify", point
    validation = config.get("info", {}).get("validation", {})
    if validation.get("val_threshold") is None:
        return None, "none", None
    point = {"precision": validation.get("val_precision"), "recall": validation.get("val_recall"),
             "average_precision": validation.get("val_ap"), "target_precision": None}
    return float(validation["val_threshold"]), "training", point
