"""Coarse alignment of two images (RANSAC-Flow's first stage) and the files ``segswap align`` writes.

Image a is described at one size, image b at several resizes (RANSAC-Flow's 7, from ×1.2 to ÷1.2), so
a moderate change of scale between them still finds matching cells; the homography maps a's pixels
to b's. With a pair model, only the cells inside its co-segmentation masks take part: the homography
then aligns what the two images share, not their backgrounds (our addition).

With a keypoint matcher (:mod:`segswap.keypoints`, by default :data:`~segswap.shipped.KEYPOINTS`) the
coarse homography comes from its matches where they support one (at least
:data:`~segswap.shipped.KEYPOINT_MIN_INLIERS` inliers), refined once: a is warped into b's frame by it, matched
again, and the residual homography composed with it (the second matching sees nearly aligned images, so
a strong change of viewpoint is recovered in two small steps). Otherwise the backbone-feature stage runs.

A pair model whose correspondences are one smooth warp (:data:`segswap.models.WARP_MODELS`, MaCoSNet's
affine + thin-plate spline) aligns the pair itself: :func:`align_by_warp`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..backbone import DEFAULT_BACKBONE, backbone_tokens, get_backbone
from ..errors import SegswapError
from ..io import load_image
from ..io.files import write_bytes_atomic
from ..grid import DEFAULT_SIZE, check_input_size
from ..models import WARP_MODELS
from ..models.macosnet import transform_points
from ..shipped import KEYPOINT_MIN_INLIERS
from .ransac import CoarseAlignment, coarse_homography

#: RANSAC-Flow's number of resizes of one image, and the largest resize factor (the smallest is 1/it).
RANSAC_FLOW_SCALES = 7
SCALE_RATIO = 1.2
#: The files ``write_alignment`` writes beside result.json.
IMAGE_FILES = ("warped.png", "side_by_side.png", "blend.png")


@dataclass
class Aligned:
    image_a: np.ndarray  # RGB uint8, as loaded
    image_b: np.ndarray
    coarse: CoarseAlignment
    backbone: str
    size: int  # long side in px of a's features; b's are at size × each of scales
    scales: list[float]  # resize factors of b
    shared_only: bool  # matches were restricted to the pair model's masks
    stage: str = "features"  # where the homography came from: "features" (RANSAC-Flow) or "keypoints:<matcher>"

    def warped(self) -> np.ndarray:
        """a warped into b's frame (b's size); black where a does not reach."""
        height, width = self.image_b.shape[:2]
        return cv2.warpPerspective(self.image_a, self.coarse.homography, (width, height), flags=cv2.INTER_LINEAR)


def scale_factors(count: int, ratio: float = SCALE_RATIO) -> list[float]:
    """``count`` resize factors from ``ratio`` down to 1/``ratio``, evenly spaced in log scale (RANSAC-Flow's
    spacing is linear in each half; for ×1.2 the two differ by under 0.5 %); one factor is 1."""
    if count < 1:
        raise SegswapError(f"--scales must be at least 1, got {count}")
    return [1.0] if count == 1 else (ratio ** np.linspace(1, -1, count)).tolist()


def feature_pyramid(backbone, image: np.ndarray, size: int, scales: list[float]) -> list[np.ndarray]:
    """C×h×w features of ``image`` resized to a long side of ``size`` × each factor."""
    return [backbone_tokens(backbone, image, max(32, round(size * s))).numpy() for s in scales]


def align(image_a, image_b, *, backbone: str | None = None, size: int | None = None, scales: int | None = None,
          matcher=None, keypoints=None) -> Aligned:
    """Estimate the homography from ``image_a`` to ``image_b`` (paths, PIL images or arrays).

    ``backbone`` defaults to EfficientNet-Lite2; ``size``, the long side in pixels the features are
    computed at, to 480 (b's are at ``size`` × each of ``scales`` resize factors, by default RANSAC-Flow's
    7). ``matcher``: a pair model (:func:`segswap.load`) whose co-segmentation masks
    restrict the matches to the content the two images share. ``keypoints``: a
    :class:`~segswap.keypoints.KeypointMatcher` whose homography is used where it has support (see the
    module docstring); None for the backbone-feature stage only. The result's homography is None when
    no homography fits the matches.
    """
    backbone, size = backbone or DEFAULT_BACKBONE, size or DEFAULT_SIZE
    check_input_size(size)
    rgb_a, rgb_b = load_image(image_a), load_image(image_b)
    factors = scale_factors(RANSAC_FLOW_SCALES if scales is None else scales)
    keep_a = keep_b = None
    if matcher is not None:
        shared = matcher.match(rgb_a, rgb_b, scales=(1.0,), keypoints=False)  # the homography search handles scale
        keep_a, keep_b = shared["mask_a"], shared["mask_b"]
    if keypoints is not None:
        coarse = keypoint_homography(keypoints, rgb_a, rgb_b, keep_a, keep_b)
        if coarse is not None:
            return Aligned(rgb_a, rgb_b, coarse, backbone, size, factors, matcher is not None, f"keypoints:{keypoints.name}")
    extractor = get_backbone(backbone)
    coarse = coarse_homography(feature_pyramid(extractor, rgb_a, size, [1.0]), _size_of(rgb_a),
                               feature_pyramid(extractor, rgb_b, size, factors), _size_of(rgb_b),
                               keep_a=keep_a, keep_b=keep_b)
    return Aligned(rgb_a, rgb_b, coarse, backbone, size, factors, matcher is not None)


def keypoint_homography(keypoints, rgb_a: np.ndarray, rgb_b: np.ndarray, keep_a: np.ndarray | None = None,
                        keep_b: np.ndarray | None = None, min_inliers: int = KEYPOINT_MIN_INLIERS) -> CoarseAlignment | None:
    """The homography a → b from ``keypoints``' matches (only those inside ``keep_a``/``keep_b`` where given),
    refined once on a warped by it; None when it has fewer than ``min_inliers`` inliers."""
    feats_a, feats_b = keypoints.extract(rgb_a), keypoints.extract(rgb_b)
    first = _kept_homography(keypoints, feats_a, feats_b, keep_a, keep_b)
    if first.matrix is None or first.count < min_inliers:
        return None
    homography, points_a, points_b, matches = first.matrix, first.points_a, first.points_b, first.matches
    warped = cv2.warpPerspective(rgb_a, homography, _size_of(rgb_b), flags=cv2.INTER_LINEAR)
    keep_warped = None if keep_a is None else cv2.warpPerspective(keep_a.astype(np.float32), homography, _size_of(rgb_b))
    if warped.any(axis=2).mean() > 0.05:  # a warped by an extreme homography can leave b's frame almost empty
        second = _kept_homography(keypoints, keypoints.extract(warped), feats_b, keep_warped, keep_b)
        if second.matrix is not None and second.count >= min_inliers:
            homography = second.matrix @ homography
            homography = homography / homography[2, 2]
            # the second pass's points are in warped-a pixels: back to a's own
            points_a = cv2.perspectiveTransform(second.points_a.reshape(-1, 1, 2), np.linalg.inv(first.matrix)).reshape(-1, 2)
            points_b, matches = second.points_b, second.matches
    return CoarseAlignment(homography, matches, len(points_a), points_a, points_b)


@dataclass
class _Fit:
    matrix: np.ndarray | None
    count: int
    matches: int
    points_a: np.ndarray
    points_b: np.ndarray


def _kept_homography(keypoints, feats_a: dict, feats_b: dict, keep_a, keep_b) -> _Fit:
    pairs, _ = keypoints.match_features(feats_a, feats_b)
    for side, feats, keep in ((0, feats_a, keep_a), (1, feats_b, keep_b)):
        if keep is not None and len(pairs):
            xy = feats["keypoints"][pairs[:, side]]
            xs = np.clip(xy[:, 0].astype(int), 0, keep.shape[1] - 1)
            ys = np.clip(xy[:, 1].astype(int), 0, keep.shape[0] - 1)
            pairs = pairs[keep[ys, xs] >= 0.5]
    fitted = keypoints.geometry(feats_a, feats_b, pairs, "homography")
    inliers = pairs[fitted.inliers] if len(pairs) else pairs
    return _Fit(fitted.matrix, fitted.count, len(pairs), feats_a["keypoints"][inliers[:, 0]].astype(np.float64),
                feats_b["keypoints"][inliers[:, 1]].astype(np.float64))


def _size_of(rgb: np.ndarray) -> tuple[int, int]:
    return rgb.shape[1], rgb.shape[0]


def warp_into_b(image_a: np.ndarray, size_b: tuple[int, int], warp: dict) -> np.ndarray:
    """``image_a`` (RGB) warped into b's frame (``size_b`` = width, height) by a warp model's T_BA
    (``warp``: a match result's ``affine_ba`` and ``tps_ba``), evaluated at every pixel of b; black
    where T_BA leaves a."""
    width, height = size_b
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width * 2 - 1
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height * 2 - 1
    points = torch.from_numpy(np.stack(np.meshgrid(xs, ys), axis=-1).reshape(1, -1, 2))
    params = {key: torch.as_tensor(warp[key])[None] for key in ("affine_ba", "tps_ba")}
    with torch.no_grad():
        landed = transform_points(params, "ba", points)[0].numpy().reshape(height, width, 2)
    h_a, w_a = image_a.shape[:2]
    map_x = (landed[..., 0] + 1) / 2 * w_a - 0.5
    map_y = (landed[..., 1] + 1) / 2 * h_a - 0.5
    return cv2.remap(image_a, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def align_by_warp(image_a, image_b, matcher) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """A warp model's own alignment of ``image_a`` onto ``image_b`` (one view of the pair, masks without
    the objectness prior) → (a, b, a warped into b's frame, the match result)."""
    if matcher.name not in WARP_MODELS:
        raise SegswapError(f"model {matcher.name!r} has no warp of its own (warp models: {', '.join(sorted(WARP_MODELS))})")
    rgb_a, rgb_b = load_image(image_a), load_image(image_b)
    result = matcher.match(rgb_a, rgb_b, scales=(1.0,), prior=False, keypoints=False)
    return rgb_a, rgb_b, warp_into_b(rgb_a, _size_of(rgb_b), result), result


def write_warp(out: Path, image_a: np.ndarray, image_b: np.ndarray, warped: np.ndarray, result: dict, details: dict) -> dict:
    """:func:`align_by_warp`'s files: those of :func:`write_alignment`, with the warp's parameters and
    the two masks' areas in result.json."""
    _write_check_images(out, warped, image_b)
    written = {
        "warp": "affine + thin-plate spline",
        **{key: np.asarray(result[key]).tolist() for key in ("affine_ab", "affine_ba", "tps_ab", "tps_ba")},
        "mask_area_a": float((result["mask_a"] >= 0.5).mean()),
        "mask_area_b": float((result["mask_b"] >= 0.5).mean()),
        "size_a": list(_size_of(image_a)),
        "size_b": list(_size_of(image_b)),
        "backbone": result["backbone"],
        "size": result["input_size"],
        "weights": result["weights"],
        **details,
    }
    write_bytes_atomic(out / "result.json", (json.dumps(written, indent=1) + "\n").encode())
    return written


def _write_check_images(out: Path, warped: np.ndarray, image_b: np.ndarray) -> None:
    check_images = {
        "warped.png": warped,
        "side_by_side.png": np.hstack([warped, image_b]),
        "blend.png": cv2.addWeighted(warped, 0.5, image_b, 0.5, 0),
    }
    for name, rgb in check_images.items():
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise SegswapError(f"{out / name}: could not encode the image")
        write_bytes_atomic(out / name, encoded.tobytes())


def write_alignment(out: Path, aligned: Aligned, details: dict) -> dict:
    """Write ``out``/result.json, warped.png (a in b's frame), side_by_side.png (warped a | b) and
    blend.png (their average); returns what result.json holds. ``details`` are added to it."""
    coarse = aligned.coarse
    if coarse.homography is None:
        where = " inside the shared masks" if aligned.shared_only else ""
        raise SegswapError(f"cannot align: {coarse.matches} mutual matches{where} and no homography fits them")
    _write_check_images(out, aligned.warped(), aligned.image_b)
    result = {
        "homography": coarse.homography.tolist(),
        "inliers": coarse.inliers,
        "matches": coarse.matches,
        "size_a": list(_size_of(aligned.image_a)),
        "size_b": list(_size_of(aligned.image_b)),
        "backbone": aligned.backbone,
        "size": aligned.size,
        "scales_b": [round(s, 4) for s in aligned.scales],
        "shared_only": aligned.shared_only,
        "stage": aligned.stage,
        **details,
    }
    write_bytes_atomic(out / "result.json", (json.dumps(result, indent=1) + "\n").encode())
    return result
