"""Two-view geometry from point matches with OpenCV's USAC (MAGSAC++): a homography (a plane, or a
camera that only turns) or a fundamental matrix (any rigid scene), with the inliers.

Thresholds are in pixels of the frame the points are given in; :func:`estimate` takes that frame's
scale so that a threshold set for 640-px images means the same on a 4,000-px original.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import SegswapError

#: The models :func:`estimate` fits, and the fewest matches each needs.
MIN_MATCHES = {"homography": 4, "fundamental": 8}
THRESHOLD_PX = 3.0
CONFIDENCE = 0.9999
MAX_ITERATIONS = 10_000


@dataclass
class Geometry:
    """A fitted two-view model, a → b."""

    model: str  # "homography" or "fundamental"
    matrix: np.ndarray | None  # 3×3 in the points' pixels (a's to b's); None when no model fits
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # one flag per match
    threshold: float = THRESHOLD_PX  # in the pixels the points were given in

    @property
    def count(self) -> int:
        return int(self.inliers.sum())

    def as_json(self) -> dict:
        return {"model": self.model, "matrix": None if self.matrix is None else np.round(self.matrix, 8).tolist(),
                "inliers": self.count, "threshold_px": round(float(self.threshold), 3)}


def check_model(model: str) -> str:
    if model not in MIN_MATCHES:
        raise SegswapError(f"geometry must be one of {', '.join(MIN_MATCHES)}, not {model!r}")
    return model


def estimate(points_a: np.ndarray, points_b: np.ndarray, model: str = "homography", *,
             threshold: float = THRESHOLD_PX) -> Geometry:
    """Fit ``model`` ("homography" or "fundamental") to the N×2 matches ``points_a`` ↔ ``points_b`` by
    USAC MAGSAC++ with an inlier ``threshold`` in pixels (reprojection error in b for a homography,
    distance to the epipolar line for a fundamental matrix). Fewer matches than the model needs, or a
    degenerate set, give a Geometry with ``matrix`` None and no inliers."""
    check_model(model)
    a = np.ascontiguousarray(points_a, np.float64).reshape(-1, 2)
    b = np.ascontiguousarray(points_b, np.float64).reshape(-1, 2)
    none = Geometry(model, None, np.zeros(len(a), bool), threshold)
    if len(a) < MIN_MATCHES[model]:
        return none
    try:
        if model == "homography":
            matrix, mask = cv2.findHomography(a, b, cv2.USAC_MAGSAC, threshold, maxIters=MAX_ITERATIONS,
                                              confidence=CONFIDENCE)
        else:
            matrix, mask = cv2.findFundamentalMat(a, b, cv2.USAC_MAGSAC, threshold, CONFIDENCE, MAX_ITERATIONS)
    except cv2.error:  # a degenerate sample set (all points on a line, repeated points)
        return none
    if matrix is None or mask is None or matrix.shape != (3, 3):
        return none
    return Geometry(model, matrix, mask.ravel().astype(bool), threshold)


def rescale_matrix(matrix: np.ndarray | None, model: str, scale_a: float, scale_b: float) -> np.ndarray | None:
    """A model fitted on points of a scaled by ``scale_a`` and of b by ``scale_b`` → the same model in
    the images' own pixels."""
    if matrix is None:
        return None
    s_a, s_b = np.diag([scale_a, scale_a, 1.0]), np.diag([scale_b, scale_b, 1.0])
    if model == "homography":
        out = np.linalg.inv(s_b) @ matrix @ s_a
        return out / out[2, 2]
    out = s_b.T @ matrix @ s_a
    return out / np.abs(out).max()


def project(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """N×2 points mapped by a 3×3 homography."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    mapped = np.c_[points, np.ones(len(points))] @ np.asarray(homography, np.float64).T
    return mapped[:, :2] / mapped[:, 2:3]
