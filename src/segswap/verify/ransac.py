"""Geometric verification of frozen-feature matches with RANSAC, as in the authors' earlier systems.

Both start from the mutual nearest neighbours of two L2-normalised feature maps (C×h×w; a cell's
position is its centre in the pixels of the image the map covers) and fit one transformation with
OpenCV's RANSAC:

- :func:`verify` — ArtMiner (Shen et al., CVPR 2019): a 3-point affine from the target to the query;
  every inlier scores similarity × exp(-err²/tol²); the pair score is their sum divided by the number
  of query cells, so it says how much of the query was found; the inliers' bounding box in the target
  is a detection.
- :func:`coarse_homography` — RANSAC-Flow's coarse stage (Shen et al., ECCV 2020): a 4-point homography
  a → b from matches pooled over several scales of the images.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..grid import STRIDE, cells_to_pixels
from ..models.correlation import cell_centres

#: ArtMiner's tolerance, in query cells: 2 when the query is a whole image, 1 for a region (its code).
TOLERANCE_CELLS_IMAGE = 2.0
TOLERANCE_CELLS_REGION = 1.0
#: ArtMiner's affine RANSAC iterations.
AFFINE_ITERATIONS = 1000
#: RANSAC-Flow's coarse tolerance, in its normalised coordinates ([-1, 1] along each side): 2.5 % of a side.
HOMOGRAPHY_TOLERANCE = 0.05
#: RANSAC-Flow's coarse homography iterations.
HOMOGRAPHY_ITERATIONS = 10_000
#: A cell takes part in the homography only where the optional keep-mask is at least this.
KEEP_LEVEL = 0.5


@dataclass
class Verification:
    """ArtMiner's verdict on a query against a target."""

    score: float  # Σ over inliers of similarity × exp(-err²/tol²), divided by the number of query cells
    matches: int  # mutual nearest neighbours before RANSAC
    inliers: np.ndarray  # K×5: xq, yq, xt, yt (pixels of each feature map's image), contribution
    affine: np.ndarray | None  # 2×3, target pixels → query pixels; None when no fit was possible
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 in target pixels: the inlier cells' extent
    region: np.ndarray  # h_t×w_t float32: 1 on the target cells that are inliers


@dataclass
class CoarseAlignment:
    """RANSAC-Flow's coarse stage result."""

    homography: np.ndarray | None  # 3×3, pixels of a → pixels of b; None when no fit was possible
    matches: int  # mutual nearest neighbours pooled over scales
    inliers: int
    points_a: np.ndarray  # K×2 inlier positions in a's pixels
    points_b: np.ndarray  # K×2 their matches in b's pixels


def cell_positions(grid: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """(h·w)×2 centres (x, y), row-major, of the cells of an h×w ``grid`` laid over an image of ``size`` (w, h)."""
    return cell_centres(*grid).numpy().astype(np.float64) * np.asarray(size, np.float64)


def saliency_weights(feats: np.ndarray) -> np.ndarray:
    """h×w ArtMiner weights, 1 − mean cosine of each cell to its 4 neighbours.

    A cell that looks like its surroundings (flat paint, sky, regular texture) matches anywhere and
    proves little; a distinctive cell counts fully. Border cells average the neighbours they have
    (ArtMiner zeroes them, which would discard a quarter of a small query's cells).
    """
    _, h, w = feats.shape
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    vertical = (feats[:, 1:] * feats[:, :-1]).sum(axis=0)
    horizontal = (feats[:, :, 1:] * feats[:, :, :-1]).sum(axis=0)
    total[1:] += vertical
    total[:-1] += vertical
    count[1:] += 1
    count[:-1] += 1
    total[:, 1:] += horizontal
    total[:, :-1] += horizontal
    count[:, 1:] += 1
    count[:, :-1] += 1
    return np.clip(1.0 - total / np.maximum(count, 1), 0.0, None)


def mutual_nearest_neighbours(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of an N×M similarity matrix where j is i's best match and i is j's."""
    if similarity.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    best_of_rows = similarity.argmax(axis=1)
    best_of_columns = similarity.argmax(axis=0)
    rows = np.flatnonzero(best_of_columns[best_of_rows] == np.arange(similarity.shape[0]))
    return rows, best_of_rows[rows]


def fit_affine(points_from: np.ndarray, points_to: np.ndarray, tolerance: float) -> np.ndarray | None:
    """2×3 affine fitted by 3-point RANSAC (inlier distance ``tolerance``, in ``points_to`` units), or None."""
    if len(points_from) < 3:
        return None
    affine, _ = cv2.estimateAffine2D(np.asarray(points_from, np.float64), np.asarray(points_to, np.float64),
                                     method=cv2.RANSAC, ransacReprojThreshold=tolerance,
                                     maxIters=AFFINE_ITERATIONS, confidence=0.999)
    return affine


def fit_homography(points_a: np.ndarray, points_b: np.ndarray, size_a, size_b,
                   tolerance: float = HOMOGRAPHY_TOLERANCE) -> tuple[np.ndarray | None, np.ndarray]:
    """3×3 homography a → b in pixels by 4-point RANSAC, and the inlier flags.

    As RANSAC-Flow, RANSAC runs in coordinates normalised to [-1, 1] along each side of each image, so
    ``tolerance`` is a fraction of the image size and does not depend on the resolution.
    """
    if len(points_a) < 4:
        return None, np.zeros(len(points_a), bool)
    to_unit_a, to_unit_b = _to_unit_square(size_a), _to_unit_square(size_b)
    unit_a = cv2.perspectiveTransform(np.asarray(points_a, np.float64).reshape(-1, 1, 2), to_unit_a)
    unit_b = cv2.perspectiveTransform(np.asarray(points_b, np.float64).reshape(-1, 1, 2), to_unit_b)
    homography, inliers = cv2.findHomography(unit_a, unit_b, cv2.RANSAC, tolerance, maxIters=HOMOGRAPHY_ITERATIONS,
                                             confidence=0.999)
    if homography is None:
        return None, np.zeros(len(points_a), bool)
    pixels = np.linalg.inv(to_unit_b) @ homography @ to_unit_a
    return pixels / pixels[2, 2], inliers.ravel().astype(bool)


def _to_unit_square(size) -> np.ndarray:
    w, h = size
    return np.array([[2.0 / w, 0, -1], [0, 2.0 / h, -1], [0, 0, 1]])


def verify(query_feats: np.ndarray, target_feats: np.ndarray, target_size: tuple[int, int], *,
           query_size: tuple[int, int] | None = None, tolerance_cells: float = TOLERANCE_CELLS_IMAGE) -> Verification:
    """ArtMiner's verification of a query (a whole image or a region cut out of one) in a target.

    ``query_feats``/``target_feats``: C×h×w L2-normalised features; ``target_size``: (w, h) of the target
    image in pixels; ``query_size``: (w, h) of the pixels the query's features were computed on (default:
    ``STRIDE`` px per cell). The tolerance is measured in the query, in cells.
    """
    query_feats = np.asarray(query_feats, np.float32)
    target_feats = np.asarray(target_feats, np.float32)
    (_, hq, wq), (_, ht, wt) = query_feats.shape, target_feats.shape
    query_size = query_size or (wq * STRIDE, hq * STRIDE)
    tolerance = tolerance_cells * (query_size[0] / wq + query_size[1] / hq) / 2
    # Weighting the query's features (not only the scores) also decides which query cell a target cell
    # picks, so a distinctive cell wins over a bland one, as in ArtMiner.
    weighted = query_feats.reshape(len(query_feats), -1) * saliency_weights(query_feats).reshape(1, -1)
    similarity = weighted.T @ target_feats.reshape(len(target_feats), -1)
    rows, columns = mutual_nearest_neighbours(similarity)
    points_q = cell_positions((hq, wq), query_size)[rows]
    points_t = cell_positions((ht, wt), target_size)[columns]
    region = np.zeros((ht, wt), np.float32)
    affine = fit_affine(points_t, points_q, tolerance)
    if affine is None:
        return Verification(0.0, len(rows), np.zeros((0, 5)), None, None, region)
    errors = np.linalg.norm(points_t @ affine[:, :2].T + affine[:, 2] - points_q, axis=1)
    inlier = errors < tolerance
    contribution = np.clip(similarity[rows, columns], 0, None) * np.exp(-errors**2 / tolerance**2)
    inliers = np.column_stack([points_q, points_t, contribution])[inlier]
    region.flat[columns[inlier]] = 1.0
    score = float(inliers[:, 4].sum()) / (hq * wq)
    ys, xs = np.nonzero(region)
    cells = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else None
    box = cells_to_pixels(cells, (ht, wt), target_size) if cells else None
    return Verification(score, len(rows), inliers, affine, box, region)


def coarse_homography(pyramid_a: list[np.ndarray], size_a: tuple[int, int], pyramid_b: list[np.ndarray],
                      size_b: tuple[int, int], *, keep_a: np.ndarray | None = None, keep_b: np.ndarray | None = None,
                      tolerance: float = HOMOGRAPHY_TOLERANCE) -> CoarseAlignment:
    """RANSAC-Flow's coarse alignment: the homography a → b from mutual nearest neighbours.

    ``pyramid_a``/``pyramid_b``: C×h×w features of each image at one or more resizes, each covering the
    whole image of ``size_a``/``size_b`` (w, h) pixels; the cells of every scale are pooled, so a cell
    of a can match b at whichever scale fits best. ``keep_a``/``keep_b``: optional H×W masks in each
    image's pixels; only cells whose centre lies where the mask is at least ``KEEP_LEVEL`` take part.
    """
    feats_a, points_a = _pooled_cells(pyramid_a, size_a, keep_a)
    feats_b, points_b = _pooled_cells(pyramid_b, size_b, keep_b)
    rows, columns = mutual_nearest_neighbours(feats_a @ feats_b.T)
    points_a, points_b = points_a[rows], points_b[columns]
    homography, inlier = fit_homography(points_a, points_b, size_a, size_b, tolerance)
    return CoarseAlignment(homography, len(rows), int(inlier.sum()), points_a[inlier], points_b[inlier])


def _pooled_cells(pyramid: list[np.ndarray], size: tuple[int, int], keep: np.ndarray | None):
    """N×C features and N×2 pixel positions of the cells of every scale (those ``keep`` allows)."""
    feats, points = [], []
    for level in pyramid:
        c, h, w = level.shape
        feats.append(np.asarray(level, np.float32).reshape(c, -1).T)
        points.append(cell_positions((h, w), size))
    feats, points = np.concatenate(feats), np.concatenate(points)
    if keep is not None:
        xs = np.clip(points[:, 0].astype(int), 0, keep.shape[1] - 1)
        ys = np.clip(points[:, 1].astype(int), 0, keep.shape[0] - 1)
        kept = keep[ys, xs] >= KEEP_LEVEL
        feats, points = feats[kept], points[kept]
    return feats, points
