"""What ships inside the package: the default pair model, the trained models' weights files (SCOTT's
too) and their input size, the default views and the search and verify calibrations.

Light (no torch): the command line reads the shipped input size for its help text at start-up.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .errors import SegswapError

DEFAULT_MODEL = "segswap"
#: Weights file shipped inside the package for each trained model.
SHIPPED_WEIGHTS = {"segswap": "segswap.safetensors", "ncnet": "ncnet.safetensors", "scott": "scott.safetensors",
                   "macosnet": "macosnet.safetensors"}
#: The SegSwap transformer weights `segswap verify` decides by (its pair-score verdict): the frozen-feature
#: weights the default pair model was fine-tuned from. The fine-tuned ones passed the pair model's rule but
#: not verify's (7 of 8 matching sample pairs at their calibrated threshold; lab/training.md).
VERIFY_WEIGHTS = "segswap-verify.safetensors"
#: What `segswap verify` decides by (``--by``): the default first.
VERIFY_BY = ("pair-score", "fused", "keypoints", "scott")
#: Relative scales `segswap pair`, the demo and ``Matcher.match`` try by default: a detail copied at up
#: to twice or half its size (engraving vs painting, object vs scene) is otherwise too few cells in one
#: image to match.
SEARCH_SCALES = (0.5, 0.7, 1.0, 1.4, 2.0)
#: The relative scales a view may have (`--scales`, ``Matcher.match(scales=...)``).
SCALE_RANGE = (0.1, 10.0)
#: Whether `segswap pair` and ``Matcher.match`` average each mask with the objectness prior by default
#: (``--prior/--no-prior``): on, by the rule and the measurements in lab/results.md ("`segswap pair` with
#: the objectness prior").
PAIR_PRIOR = True
#: The keypoint matcher (:mod:`segswap.keypoints`) whose matches and geometry `segswap pair`, ``Matcher.match``,
#: `segswap verify` and `segswap align` use by default (``--keypoints``), by the rule in lab/results.md.
KEYPOINTS = "xfeat-lighterglue"
#: The keypoints an index stores for each image (`segswap index`), and the matcher `segswap search` checks its
#: re-ranked head with: XFeat's, 1024 an image (about 140 kB), matched by mutual nearest neighbours, which
#: takes milliseconds a pair where LighterGlue takes 0.2 s (lab/performance.md).
INDEX_KEYPOINTS = ("xfeat", {"max_keypoints": 1024})
#: The finer keypoint layer an index keeps for detail queries (`segswap index --details`): XFeat's at a long
#: side of 1600 px, 4096 an image (about 560 kB), chosen by rule G1 (lab/rules.md): a detail a tenth of the
#: image's width gets a few dozen keypoints there, a handful at INDEX_KEYPOINTS' 640 px.
DETAIL_KEYPOINTS = ("xfeat", {"resize": 1600, "max_keypoints": 4096})
#: The homography inliers of :data:`KEYPOINTS` from which two images are taken to show one rigid thing:
#: where `segswap align` trusts the keypoint homography (else the backbone-feature stage runs), and the least
#: `segswap search` asks of them; the count at which the keypoints alone reach precision 0.95
#: on verify's calibration pairs (lab/results.md).
KEYPOINT_MIN_INLIERS = 10
#: `segswap search`'s match / no-match thresholds, one record per calibrated weights file, written by
#: `segswap eval calibrate-search`.
SEARCH_CALIBRATION = "search_calibration.json"
#: `segswap verify`'s match / no-match threshold, one record per calibrated SCOTT weights file, written by
#: `segswap eval calibrate-verify`.
VERIFY_CALIBRATION = "verify_calibration.json"


def shipped_weights_path(name: str) -> Path | None:
    """Path of the weights shipped in the package for model ``name``, or None if there are none."""
    filename = SHIPPED_WEIGHTS.get(name)
    return None if filename is None else _installed(filename)


def shipped_verify_weights_path() -> Path | None:
    """Path of the transformer weights `segswap verify`'s pair-score verdict uses, or None if not installed."""
    return _installed(VERIFY_WEIGHTS)


def check_verify_by(by: str, option: str = "--by") -> None:
    """Refuse a verdict `segswap verify` does not know, naming the command-line ``option`` that chose it."""
    if by not in VERIFY_BY:
        raise SegswapError(f"{option} must be one of {', '.join(VERIFY_BY)}, not {by!r}")


def check_scales(scales) -> tuple[float, ...]:
    """``scales`` as floats if there are some and each lies in :data:`SCALE_RANGE`; else a one-line
    :class:`SegswapError`. Light, so the command line checks ``--scales`` before torch loads."""
    scales = tuple(float(x) for x in scales)
    low, high = SCALE_RANGE
    if not scales or any(not (low <= x <= high) for x in scales):
        raise SegswapError(f"scales must be between {low:g} and {high:g}, got {list(scales)}")
    return scales


def search_calibrations() -> list[dict]:
    """The calibration records shipped in the package (empty if there are none)."""
    return _records(SEARCH_CALIBRATION)


def verify_calibrations() -> list[dict]:
    """`segswap verify`'s calibration records shipped in the package (empty if there are none)."""
    return _records(VERIFY_CALIBRATION)


def verify_calibration_path() -> Path:
    return _data_path(VERIFY_CALIBRATION)


def _records(filename: str) -> list[dict]:
    path = _installed(filename)
    return json.loads(path.read_text()) if path is not None else []


def _data_path(filename: str) -> Path:
    return Path(str(resources.files("segswap") / "data" / filename))


def _installed(filename: str) -> Path | None:
    """The package data file ``filename``, or None if it is not installed."""
    path = _data_path(filename)
    return path if path.is_file() else None


def shipped_input_size(name: str = DEFAULT_MODEL) -> int | None:
    """The input size the shipped weights of model ``name`` were trained at (their default), or None."""
    config = _shipped_config(name)
    return None if config is None else int(config["size"])


def shipped_backbone(name: str = DEFAULT_MODEL) -> str | None:
    """The backbone the shipped weights of model ``name`` run on, or None if none are installed: a new
    index is built with it so that the default model can read the index's features."""
    config = _shipped_config(name)
    return None if config is None else str(config["backbone"])


def _shipped_config(name: str) -> dict | None:
    path = shipped_weights_path(name)
    if path is None:
        return None
    # The safetensors header (an 8-byte little-endian length, then JSON) read directly: the command line
    # asks for this to word its help, and safetensors' reader would import numpy (0.1 s) for it.
    with open(path, "rb") as weights:
        header = json.loads(weights.read(int.from_bytes(weights.read(8), "little")))
    return json.loads(header["__metadata__"]["segswap"])
