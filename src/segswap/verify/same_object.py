"""Same object or not (``segswap verify A B``): by default the SegSwap pair score over `segswap pair`'s
views (:class:`PairScoreVerifier`), or SCOTT's probability (:class:`Verifier`, ``--by scott``).

Both decide at a threshold from the calibration file written by `segswap eval calibrate-verify` (the
package's ``data/verify_calibration.json``, one record per weights file by its SHA-256 and input size):
the lowest score at which "match" reaches the stated precision on held-out synthetic pairs across
conditions against as many non-matching pairs, half of them the same class of object. The pair score
is the default by the rule in docs/results.md ("The pair score over `segswap pair`'s five views"): on
the sample pairs it calls all 8 matching pairs and none of the 56 non-matching ones "match", where SCOTT
could not separate them at any threshold.

SCOTT's verdict:

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
from ..models.outputs import matched_fraction
from ..pair import load as load_matcher
from ..shipped import (SEARCH_SCALES, VERIFY_BY, check_verify_by, shipped_verify_weights_path, shipped_weights_path,
                       verify_calibrations)

#: The calibration record's statistic for each.
STATISTICS = {"pair-score": "matched fraction of the view segswap pair keeps, over its scales",
              "scott": "SCOTT match probability"}

class Verifier:
    """A SCOTT model with its frozen backbone, input size and decision threshold."""

    by = "scott"

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
        return {"by": self.by, "match": probability >= self.threshold, "probability": probability, "threshold": self.threshold,
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


class PairScoreVerifier:
    """A pair model (:class:`segswap.pair.Matcher`) and a threshold on its pair score: Eq. 3's score
    over the query's cells (the matched fraction, a as the query) of the view `segswap pair` keeps among
    ``scales`` (a small copy is found at ×2, a large one at ×0.5)."""

    by = "pair-score"

    def __init__(self, matcher, *, threshold: float, threshold_source: str = "given", operating_point: dict | None = None,
                 scales=SEARCH_SCALES):
        if not 0.0 < threshold < 1.0:
            raise SegswapError(f"--threshold is a matched fraction strictly between 0 and 1, got {threshold}")
        self.matcher, self.threshold, self.scales = matcher, threshold, tuple(scales)
        self.threshold_source, self.operating_point = threshold_source, operating_point
        self.weights, self.weights_sha256, self.size = matcher.weights, matcher.weights_sha256, matcher.size
        self.backbone = matcher.backbone

    def verify(self, image_a, image_b) -> dict:
        """Whether ``image_a`` and ``image_b`` show the same object → ``match``, ``score`` (the matched
        fraction), ``threshold``, ``scale`` (the view kept: b resized by it relative to a), the masks'
        areas (fractions of the image), and where the threshold came from."""
        result = self.matcher.match(image_a, image_b, scales=self.scales, prior=False)
        score = float(matched_fraction(result["score"], result["mask_a_tokens"].shape))
        return {"by": self.by, "match": score >= self.threshold, "score": score, "threshold": self.threshold,
                "scale": float(result["view"]["scale"]),
                "mask_a_area": float((result["mask_a"] > 0.5).mean()), "mask_b_area": float((result["mask_b"] > 0.5).mean()),
                "weights": self.weights, "threshold_source": self.threshold_source, "operating_point": self.operating_point}


def load_pair_score_verifier(weights=None, *, threshold: float | None = None, size: int | None = None,
                             runtime: str = "auto", calibrations: list[dict] | None = None) -> PairScoreVerifier:
    """The pair-score verifier of the SegSwap transformer ``weights`` (default: the package's verify weights,
    ``shipped.VERIFY_WEIGHTS``); ``threshold`` overrides the calibrated one."""
    if weights is None:
        weights = shipped_verify_weights_path()
        if weights is None:
            raise UntrainedModelError("no SegSwap transformer weights for verify are installed; pass --weights from "
                                      "`segswap train` and `segswap export`, or decide --by scott")
    matcher = load_matcher(None, weights, size=size, runtime=runtime)
    if matcher.name != "segswap":
        raise SegswapError(f"{weights}: holds a {matcher.name!r} model; the pair-score verdict is calibrated for the "
                           "SegSwap transformer (`segswap train`'s default model)")
    if threshold is not None:
        return PairScoreVerifier(matcher, threshold=float(threshold))
    record = _recorded(calibrations, lambda r: r.get("statistic") == STATISTICS["pair-score"]
                       and r["weights_sha256"] == matcher.weights_sha256 and r["size"] == matcher.size
                       and tuple(r["scales"]) == SEARCH_SCALES)
    if record is None:
        raise SegswapError(f"{matcher.weights}: no calibrated pair-score threshold recorded at {matcher.size} px; pass "
                           "--threshold or run `segswap eval calibrate-verify --by pair-score`")
    return PairScoreVerifier(matcher, threshold=float(record["threshold"]), threshold_source="calibrate-verify",
                             operating_point=_operating_point(record))


def _recorded(calibrations: list[dict] | None, applies) -> dict | None:
    """The first `segswap eval calibrate-verify` record (of ``calibrations``, default the package's file)
    for which ``applies(record)``."""
    return next((r for r in (verify_calibrations() if calibrations is None else calibrations) if applies(r)), None)


def _operating_point(record: dict) -> dict:
    return {key: record[key] for key in ("precision", "recall", "average_precision", "target_precision")}


def calibrated_threshold(digest: str, config: dict, size: int,
                         calibrations: list[dict] | None = None) -> tuple[float | None, str, dict | None]:
    """The threshold for the SCOTT weights with SHA-256 ``digest`` at input ``size``: from their
    `segswap eval calibrate-verify` record, else from their training's validation; with where it came
    from and the operating point measured there."""
    record = _recorded(calibrations, lambda r: r["weights_sha256"] == digest and r["size"] == size
                       and r.get("model", "scott") == "scott")
    if record is not None:
        return float(record["threshold"]), "calibrate-verify", _operating_point(record)
    validation = config.get("info", {}).get("validation", {})
    if validation.get("val_threshold") is None:
        return None, "none", None
    point = {"precision": validation.get("val_precision"), "recall": validation.get("val_recall"),
             "average_precision": validation.get("val_ap"), "target_precision": None}
    return float(validation["val_threshold"]), "training", point


def load_same_object_verifier(by: str = VERIFY_BY[0], weights=None, *, threshold: float | None = None,
                              size: int | None = None, runtime: str = "auto"):
    """`segswap verify`'s verifier: ``by`` "pair-score" (default, :func:`load_pair_score_verifier`, the
    transformer's ``weights``) or "scott" (:func:`load_verifier`, SCOTT's ``weights``)."""
    check_verify_by(by)
    load = load_pair_score_verifier if by == "pair-score" else load_verifier
    return load(weights, threshold=threshold, size=size, runtime=runtime)
