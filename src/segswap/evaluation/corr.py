"""Correspondence accuracy against a ground-truth homography (Oxford affine-covariant sequences).

A sequence folder holds ``img1`` … ``imgK`` and ``H1toKp``, a plain-text 3×3 matrix mapping img1 pixels
to imgK pixels. For img1 → imgK, each method's matches are checked against that homography: the fraction
within 1, 3, 5 and 10 px, and how many matches there are.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import SegswapError
from ..io import load_image
from . import baselines

THRESHOLDS = (1, 3, 5, 10)
#: A correspondence counts as inside the predicted mask where the mask of img1 is at least this.
MASK_LEVEL = 0.5


def read_homography(path: Path) -> np.ndarray:
    try:
        matrix = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as err:
        raise SegswapError(f"{path}: cannot read a homography ({err})") from None
    if matrix.shape != (3, 3):
        raise SegswapError(f"{path}: a homography is 3×3 numbers, found shape {matrix.shape}")
    return matrix


def read_sequence(root: Path) -> tuple[Path, list[tuple[str, Path, np.ndarray]]]:
    """(img1, [(name of imgK, imgK, H1toK), …]) for every ``H1toKp`` in ``root``, by K."""
    root = Path(root)
    if not root.is_dir():
        raise SegswapError(f"{root}: no such folder")
    images = {p.stem: p for p in root.iterdir() if re.fullmatch(r"img\d+", p.stem) and p.suffix.lower() in
              {".png", ".ppm", ".pgm", ".jpg", ".jpeg"}}
    targets = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := re.fullmatch(r"H1to(\d+)p", p.name)))
    if "img1" not in images or not targets:
        raise SegswapError(f"{root}: expected img1 and at least one imgK with its homography H1toKp")
    pairs = []
    for k, h_path in targets:
        if f"img{k}" not in images:
            raise SegswapError(f"{root}: {h_path.name} has no img{k}")
        pairs.append((f"img{k}", images[f"img{k}"], read_homography(h_path)))
    return images["img1"], pairs


def project(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """N×2 points mapped by a 3×3 homography."""
    if len(points) == 0:
        return np.zeros((0, 2))
    return cv2.perspectiveTransform(np.asarray(points, np.float64).reshape(-1, 1, 2), homography).reshape(-1, 2)


def transfer_errors(points_a: np.ndarray, points_b: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Distance in pixels between each point of b and where the homography sends its point of a."""
    return np.linalg.norm(project(points_a, homography) - np.asarray(points_b, np.float64), axis=1)


def accuracy(errors: np.ndarray) -> dict:
    """``n`` matches and, per threshold t, the fraction within t px (None without matches)."""
    n = len(errors)
    return {"n": n, "within": {t: (float(np.mean(errors <= t)) if n else None) for t in THRESHOLDS}}


def matcher_points(matcher, image_a: np.ndarray, image_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The matcher's correspondences a → b whose start lies inside a's predicted mask."""
    result = matcher.match(image_a, image_b, scales=(1.0,), keypoints=False)  # the published numbers are one view
    rows = result["correspondences"]
    mask = result["mask_a"]
    xs = np.clip(rows[:, 0].astype(int), 0, mask.shape[1] - 1)
    ys = np.clip(rows[:, 1].astype(int), 0, mask.shape[0] - 1)
    inside = mask[ys, xs] >= MASK_LEVEL
    return rows[inside, :2], rows[inside, 2:4]


def evaluate_correspondences(root: Path, matcher, show_progress: bool = True) -> dict:
    """For each img1 → imgK: the matcher's accuracy, SIFT + ratio test's, and SIFT + ratio + RANSAC's."""
    first, targets = read_sequence(root)
    image_a = load_image(first)
    sift_a = baselines.sift_features(image_a)
    rows = []
    for name, path, homography in tqdm(targets, desc="corr", unit="pair", disable=not show_progress):
        image_b = load_image(path)
        points_a, points_b = baselines.ratio_matches(sift_a, baselines.sift_features(image_b))
        inliers = baselines.ransac_inliers(points_a, points_b)
        model_a, model_b = matcher_points(matcher, image_a, image_b)
        rows.append({
            "pair": f"img1→{name}",
            matcher.name: accuracy(transfer_errors(model_a, model_b, homography)),
            "sift-ratio": accuracy(transfer_errors(points_a, points_b, homography)),
            "sift-ransac": accuracy(transfer_errors(points_a[inliers], points_b[inliers], homography)),
        })
    return {"root": str(root), "model": matcher.name, "backbone": matcher.backbone.name, "size": matcher.size,
            "trained": matcher.trained, "methods": [matcher.name, "sift-ratio", "sift-ransac"], "pairs": rows}
