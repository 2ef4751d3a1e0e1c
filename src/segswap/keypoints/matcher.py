"""A keypoint matcher: a local-feature family's extractor and a matcher over its descriptors.

    from segswap.keypoints import get_matcher
    matcher = get_matcher("xfeat-lighterglue")          # or "xfeat", "aliked-lightglue", "disk-lightglue"
    result = matcher.match("a.jpg", "b.jpg")             # geometry="homography" (default) or "fundamental"
    result["keypoints_a"], result["keypoints_b"]          # K×2 matched points, each image's own pixels
    result["geometry"].count                             # inliers of the fitted model

Each image is resized so its long side is ``resize`` px before extraction (learned detectors have a
scale they work best at, and the geometry's pixel threshold then means the same for every image);
keypoints are reported in the image's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch

from ..errors import SegswapError
from ..io import load_image, pixels_to_tensor
from . import aliked, disk, lightglue, xfeat
from .geometry import THRESHOLD_PX, Geometry, check_model, estimate, rescale_matrix
from .registry import MatcherSpec

#: Settings every matcher shares: the long side images are extracted at, and the geometry's threshold
#: in pixels of that frame.
COMMON_CONF = {"resize": 640, "threshold_px": THRESHOLD_PX}


@dataclass(frozen=True)
class Family:
    """A local-feature family: how to build its network and extract with it, and its settings."""

    module: object  # xfeat, aliked or disk: build(conf), extract(model, image, conf)
    conf: dict


FAMILIES = {
    "xfeat": Family(xfeat, {"max_keypoints": 4096, "detection_threshold": 0.05}),
    "aliked": Family(aliked, {"max_keypoints": 2048, "detection_threshold": 0.2, "nms_radius": 2}),
    "disk": Family(disk, {"max_keypoints": 2048, "detection_threshold": 0.0, "nms_window": 5}),
}


def _mnn(feats_a: dict, feats_b: dict, min_cosine: float, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours of unit descriptors that pass Lowe's ratio test both ways (nearest over
    second-nearest distance at most ``ratio``; 1 for none) and whose cosine is at least ``min_cosine``;
    with their cosines."""
    from kornia.feature import match_mnn, match_smnn

    a, b = feats_a["descriptors"].float(), feats_b["descriptors"].float()
    if len(a) < 2 or len(b) < 2:
        return torch.zeros((0, 2), dtype=torch.long), torch.zeros(0)
    _, indices = match_smnn(a, b, th=ratio) if ratio < 1 else match_mnn(a, b)
    indices = indices.long()
    cosine = (a[indices[:, 0]] * b[indices[:, 1]]).sum(dim=1)
    keep = cosine >= min_cosine
    return indices[keep], cosine[keep]


class KeypointMatcher:
    """Extract local features once per image, match two sets, fit a two-view model (see module docstring).

    ``default_conf`` holds the shipped settings of ``name``; keyword arguments override them.
    """

    def __init__(self, name: str, spec: MatcherSpec, **conf):
        family = FAMILIES[spec.family]
        self.name, self.family, self.glue = name, spec.family, spec.glue
        self.default_conf = {**COMMON_CONF, **family.conf, **spec.conf}
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise SegswapError(f"{name}: unknown option(s) {', '.join(sorted(unknown))}; "
                               f"options: {', '.join(sorted(self.default_conf))}")
        self.conf = {**self.default_conf, **conf}
        self._extract: Callable = family.module.extract
        self.extractor = family.module.build(self.conf)
        self.glue_model = lightglue.build(spec.family, self.conf) if spec.glue else None

    # -- extraction -------------------------------------------------------------------------
    def extract(self, image, original_size: tuple[int, int] | None = None, *, resize: int | None = None) -> dict:
        """An image (path, PIL image or array) → ``keypoints`` N×2 float32 (x, y in the image's own
        pixels), ``descriptors`` N×D float32, ``scores`` N float32, ``image_size`` (w, h) and
        ``scale`` (the image's pixels per pixel of the extraction frame). ``original_size``: the (w, h)
        of the image that ``image`` is a resized copy of; the keypoints are then in its pixels.
        ``resize``: the long side to extract at, instead of the ``resize`` setting (the same network)."""
        rgb = load_image(image)
        w, h = original_size if original_size is not None else (rgb.shape[1], rgb.shape[0])
        rgb = self.resized(rgb, resize)
        scale = w / rgb.shape[1]
        with torch.inference_mode():
            out = self._extract(self.extractor, pixels_to_tensor(rgb), self.conf)
        return {"keypoints": (out["keypoints"].float() * scale).numpy().astype(np.float32),
                "descriptors": out["descriptors"].float().numpy(), "scores": out["scores"].float().numpy(),
                "image_size": (int(w), int(h)), "scale": float(scale)}

    def resized(self, rgb: np.ndarray, resize: int | None = None) -> np.ndarray:
        """``rgb`` with its long side at ``resize`` px (by default the setting), as extraction sees it."""
        h, w = rgb.shape[:2]
        factor = (resize or self.conf["resize"]) / max(h, w)
        if factor == 1:
            return rgb
        size = (max(16, round(w * factor)), max(16, round(h * factor)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)

    # -- matching ---------------------------------------------------------------------------
    def match_features(self, feats_a: dict, feats_b: dict) -> tuple[np.ndarray, np.ndarray]:
        """K×2 indices (into a's and b's keypoints) of the matches between two :meth:`extract` outputs,
        and K match scores (LightGlue's confidence, or the descriptors' cosine for mutual neighbours)."""
        a, b = _as_tensors(feats_a), _as_tensors(feats_b)
        if self.glue_model is not None:
            pairs, scores = lightglue.match(self.glue_model, a, b)
        else:
            pairs, scores = _mnn(a, b, self.conf["min_cosine"], self.conf["ratio"])
        return pairs.numpy().astype(np.int64).reshape(-1, 2), scores.numpy().astype(np.float32)

    def geometry(self, feats_a: dict, feats_b: dict, pairs: np.ndarray, model: str = "homography") -> Geometry:
        """``model`` fitted to the matches ``pairs`` in the extraction frame (so the threshold is in
        pixels at ``resize``), returned in the images' own pixels."""
        points_a = feats_a["keypoints"][pairs[:, 0]] / feats_a["scale"]
        points_b = feats_b["keypoints"][pairs[:, 1]] / feats_b["scale"]
        fitted = estimate(points_a, points_b, model, threshold=self.conf["threshold_px"])
        fitted.matrix = rescale_matrix(fitted.matrix, model, 1 / feats_a["scale"], 1 / feats_b["scale"])
        return fitted

    def match(self, image_a, image_b, *, geometry: str = "homography", feats_a: dict | None = None,
              feats_b: dict | None = None) -> dict:
        """Match two images (or their :meth:`extract` outputs) → ``keypoints_a``/``keypoints_b`` K×2
        (each image's own pixels), ``scores`` K, ``inliers`` K bools and ``geometry`` (:class:`Geometry`,
        ``geometry`` "homography" or "fundamental"), ``num_keypoints`` (N_a, N_b), ``matcher``."""
        check_model(geometry)
        feats_a = feats_a if feats_a is not None else self.extract(image_a)
        feats_b = feats_b if feats_b is not None else self.extract(image_b)
        pairs, scores = self.match_features(feats_a, feats_b)
        fitted = self.geometry(feats_a, feats_b, pairs, geometry)
        return {"matcher": self.name, "keypoints_a": feats_a["keypoints"][pairs[:, 0]],
                "keypoints_b": feats_b["keypoints"][pairs[:, 1]], "scores": scores, "inliers": fitted.inliers,
                "geometry": fitted, "num_keypoints": (len(feats_a["keypoints"]), len(feats_b["keypoints"]))}


def _as_tensors(feats: dict) -> dict:
    # copies: stored features may be read-only views of their buffers
    return {"keypoints": torch.from_numpy(np.array(feats["keypoints"], np.float32)),
            "descriptors": torch.from_numpy(np.array(feats["descriptors"], np.float32)),
            "image_size": tuple(feats["image_size"])}
