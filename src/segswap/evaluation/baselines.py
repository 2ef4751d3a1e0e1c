"""Baselines that need no trained model, run by the same commands as segswap so tables compare like with like.

- co-segmentation: a centre box; GrabCut from a centre prior; zero-shot co-segmentation from frozen
  backbone features (each token scored by how well the other images of the group match it);
- matching and retrieval: SIFT + Lowe's ratio test + homography RANSAC.

Every parameter here is fixed a priori (from the literature or the reference notes), never fitted on a
benchmark.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..backbone import backbone_tokens
from ..errors import SegswapError

#: Side fraction of the centre box (⅔ of each side, the floor measured in the shared reference facts,
#: shared/docs/reference.md beside the repository).
CENTRE_FRACTION = 2 / 3
#: GrabCut runs on images at most this long (its cost grows with pixels: ≈0.7 s at full size).
GRABCUT_SIDE = 320
#: GrabCut iterations, as in the SegSwap authors' co-segmentation.
GRABCUT_ITERATIONS = 5
#: Lowe's ratio for SIFT matches (Lowe 2004).
SIFT_RATIO = 0.8
#: RANSAC reprojection threshold in pixels (OpenCV's usual value).
RANSAC_THRESHOLD = 3.0


# -- co-segmentation ----------------------------------------------------------------------------------
def centre_box(height: int, width: int, fraction: float = CENTRE_FRACTION) -> np.ndarray:
    """Boolean H×W mask of the centred box covering ``fraction`` of each side."""
    mask = np.zeros((height, width), bool)
    top, left = round(height * (1 - fraction) / 2), round(width * (1 - fraction) / 2)
    mask[top:height - top, left:width - left] = True
    return mask


def grabcut_refine(image: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """GrabCut from a boolean seed (probable foreground inside, probable background outside).

    Returns a boolean mask at the image's size; the seed itself when it is all one label (GrabCut
    needs both) or when GrabCut gives up every pixel.
    """
    if seed.all() or not seed.any():
        return seed
    h, w = seed.shape
    scale = min(1.0, GRABCUT_SIDE / max(h, w))
    small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small_image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    small_seed = cv2.resize(seed.astype(np.uint8), small_size, interpolation=cv2.INTER_NEAREST) if scale < 1 else seed
    labels = np.where(small_seed.astype(bool), cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if labels.min() == labels.max():  # the seed vanished when downscaled
        return seed
    cv2.setRNGSeed(0)  # GrabCut's GMM initialisation is random; results must be reproducible
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small_image, cv2.COLOR_RGB2BGR), labels, None, bgd, fgd, GRABCUT_ITERATIONS,
                cv2.GC_INIT_WITH_MASK)
    result = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if not result.any():
        return seed
    if scale < 1:
        result = cv2.resize(result.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return result


def grabcut_centre(image: np.ndarray) -> np.ndarray:
    """GrabCut seeded with the centre box: the classic "object in the middle" prior."""
    return grabcut_refine(image, centre_box(*image.shape[:2]))


def without_own_mean(tokens: torch.Tensor) -> torch.Tensor:
    """(h·w)×C tokens minus the image's mean token, re-normalised.

    What is common to every position of an image (its overall look) would otherwise dominate the
    similarities; removing it is what makes frozen features co-segment (+0.09 to +0.22 J measured).
    """
    centred = tokens - tokens.mean(dim=0, keepdim=True)
    return torch.nn.functional.normalize(centred, dim=1)


def commonness_scores(token_sets: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per image, per token: the mean over the group's other images of its best cosine similarity there."""
    scores = []
    for i, tokens in enumerate(token_sets):
        best = [(tokens @ other.T).amax(dim=1) for j, other in enumerate(token_sets) if j != i]
        scores.append(torch.stack(best).mean(dim=0))
    return scores


def otsu_mask(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Threshold an h×w score map at its Otsu level, bilinearly upsampled to ``size`` = (width, height)."""
    low, high = float(scores.min()), float(scores.max())
    if high - low < 1e-12:
        return np.zeros(size[::-1], bool)
    levels = np.round((scores - low) / (high - low) * 255).astype(np.uint8)
    threshold, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    upsampled = cv2.resize(levels.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return upsampled > threshold


def feature_cosegment(images: list[np.ndarray], backbone, size: int, refine: bool) -> list[np.ndarray]:
    """Zero-shot co-segmentation of one group from frozen features (no pair model): boolean masks.

    Each token is scored by its mean best cosine similarity to the other images' tokens, after removing
    each image's mean feature; each image's scores are thresholded at their Otsu level; with ``refine``,
    GrabCut starts from that mask.
    """
    if len(images) < 2:
        raise SegswapError("feature co-segmentation needs at least 2 images in a group")
    grids, token_sets = [], []
    for image in images:
        feats = backbone_tokens(backbone, image, size)
        grids.append(feats.shape[1:])
        token_sets.append(without_own_mean(feats.flatten(1).T))
    masks = []
    for image, grid, scores in zip(images, grids, commonness_scores(token_sets)):
        mask = otsu_mask(scores.view(*grid).numpy(), (image.shape[1], image.shape[0]))
        masks.append(grabcut_refine(image, mask) if refine else mask)
    return masks


# -- matching and retrieval ---------------------------------------------------------------------------
def sift_features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """SIFT keypoint positions (N×2, pixels) and descriptors (N×128, or None without keypoints)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    keypoints, descriptors = cv2.SIFT_create().detectAndCompute(gray, None)
    return np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2), descriptors


def ratio_matches(features_a, features_b, ratio: float = SIFT_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """Matched points (M×2 in a, M×2 in b) that pass Lowe's ratio test."""
    (points_a, desc_a), (points_b, desc_b) = features_a, features_b
    if desc_a is None or desc_b is None or len(desc_b) < 2:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_a, desc_b, k=2)
    kept = [m for m, n in pairs if m.distance < ratio * n.distance]
    return points_a[[m.queryIdx for m in kept]], points_b[[m.trainIdx for m in kept]]


def ransac_inliers(points_a: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Boolean inlier flags of a RANSAC homography fitted to the matches (all False with < 4 matches)."""
    if len(points_a) < 4:
        return np.zeros(len(points_a), bool)
    cv2.setRNGSeed(0)
    homography, inliers = cv2.findHomography(points_a, points_b, cv2.RANSAC, RANSAC_THRESHOLD)
    if homography is None:
        return np.zeros(len(points_a), bool)
    return inliers.ravel().astype(bool)


def sift_inlier_count(features_a, features_b) -> int:
    """Pair score of the SIFT baseline: the number of ratio-test matches consistent with one homography."""
    return int(ransac_inliers(*ratio_matches(features_a, features_b)).sum())
