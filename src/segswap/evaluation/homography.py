"""Homography accuracy on an Oxford affine-covariant sequence (img1 → imgK with ground truth ``H1toKp``).

The corner error of an estimated homography is the mean distance, in pixels of imgK, between the four
corners of img1 mapped by it and by the true homography. Methods: ``segswap align`` (RANSAC-Flow's
coarse stage on backbone features) at each requested number of scales; `segswap align --keypoints NAME`
(the keypoint homography, refined once) and the keypoint matcher's homography in one pass, for each
installed keypoint matcher; and SIFT + ratio test + RANSAC.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..backbone import DEFAULT_BACKBONE, get_backbone
from ..grid import DEFAULT_SIZE
from ..io import load_image
from ..keypoints import get_matcher, is_installed, matcher_names
from ..verify.align import align
from . import baselines
from .corr import project, read_sequence

SIFT_METHOD = "sift-ransac"


def corner_error(estimated: np.ndarray | None, truth: np.ndarray, size: tuple[int, int]) -> float | None:
    """Mean distance (px) between the corners of a (w, h) image mapped by both homographies; None without an estimate."""
    if estimated is None:
        return None
    w, h = size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    return float(np.linalg.norm(project(corners, estimated) - project(corners, truth), axis=1).mean())


def sift_homography(features_a, features_b) -> tuple[np.ndarray | None, int]:
    """Homography a → b from SIFT ratio-test matches by RANSAC (the usual pipeline), and its inlier count."""
    points_a, points_b = baselines.ratio_matches(features_a, features_b)
    if len(points_a) < 4:
        return None, 0
    homography, inliers = cv2.findHomography(points_a, points_b, cv2.RANSAC, baselines.RANSAC_THRESHOLD)
    return homography, 0 if inliers is None else int(inliers.sum())


def align_method(scales: int) -> str:
    return f"align-{scales}scale" + ("s" if scales > 1 else "")


def keypoint_methods(name: str) -> tuple[str, str]:
    """The two rows of keypoint matcher ``name``: its homography in one pass, and `segswap align`'s path."""
    return f"{name}", f"align-{name}"


def evaluate_alignment(root: Path, *, backbone: str | None = None, size: int = DEFAULT_SIZE,
                       scale_counts: tuple[int, ...] = (1, 7), keypoints: tuple[str, ...] | None = None,
                       show_progress: bool = True) -> dict:
    """Per img1 → imgK and method: corner error (px), inliers, seconds. ``keypoints``: the keypoint
    matchers to report (default: every installed one)."""
    backbone = backbone or DEFAULT_BACKBONE
    get_backbone(backbone)  # built (and exported) once, outside the timings
    keypoints = tuple(n for n in matcher_names() if is_installed(n)) if keypoints is None else keypoints
    built = {name: get_matcher(name) for name in keypoints}  # weights read once, outside the timings
    first, targets = read_sequence(root)
    image_a = load_image(first)
    size_a = (image_a.shape[1], image_a.shape[0])
    sift_a = baselines.sift_features(image_a)
    rows = []
    for name, path, truth in tqdm(targets, desc="align", unit="pair", disable=not show_progress):
        image_b = load_image(path)
        row = {"pair": f"img1→{name}"}
        for count in scale_counts:
            start = time.perf_counter()
            coarse = align(image_a, image_b, backbone=backbone, size=size, scales=count).coarse
            row[align_method(count)] = _entry(coarse.homography, truth, size_a, coarse.inliers, start)
        for name, matcher in built.items():
            one_pass, refined = keypoint_methods(name)
            start = time.perf_counter()
            found = matcher.match(image_a, image_b)
            row[one_pass] = _entry(found["geometry"].matrix, truth, size_a, found["geometry"].count, start)
            start = time.perf_counter()
            aligned = align(image_a, image_b, backbone=backbone, size=size, keypoints=matcher)
            row[refined] = _entry(aligned.coarse.homography, truth, size_a, aligned.coarse.inliers, start)
            row[refined]["stage"] = aligned.stage
        start = time.perf_counter()
        homography, inliers = sift_homography(sift_a, baselines.sift_features(image_b))
        row[SIFT_METHOD] = _entry(homography, truth, size_a, inliers, start)
        rows.append(row)
    return {"root": str(root), "backbone": backbone, "size": size,
            "methods": [align_method(c) for c in scale_counts] + [m for n in keypoints for m in keypoint_methods(n)]
            + [SIFT_METHOD], "pairs": rows}


def _entry(homography, truth, size_a, inliers: int, start: float) -> dict:
    return {"corner_error": corner_error(homography, truth, size_a), "inliers": inliers,
            "seconds": round(time.perf_counter() - start, 3)}
