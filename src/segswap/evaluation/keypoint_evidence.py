"""Keypoint evidence over many pairs of image files: each image's keypoints extracted once per matcher,
then every pair matched and its homography fitted (what the benchmarks report beside the pair model)."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..keypoints import get_matcher, is_installed, matcher_names


def installed_matchers() -> tuple[str, ...]:
    return tuple(name for name in matcher_names() if is_installed(name))


def inlier_counts(matcher, pairs, show_progress: bool = True, desc: str | None = None) -> np.ndarray:
    """Homography inliers of keypoint ``matcher`` (a name, or a :class:`~segswap.keypoints.KeypointMatcher`)
    for each ``(image_a, image_b)`` of ``pairs``."""
    matcher = get_matcher(matcher) if isinstance(matcher, str) else matcher
    extracted: dict = {}

    def features(image):
        key = str(image)
        if key not in extracted:
            extracted[key] = matcher.extract(image)
        return extracted[key]

    counts = []
    for a, b in tqdm(list(pairs), desc=desc or matcher.name, unit="pair", disable=not show_progress):
        counts.append(matcher.match(None, None, feats_a=features(a), feats_b=features(b))["geometry"].count)
    return np.asarray(counts, dtype=float)
