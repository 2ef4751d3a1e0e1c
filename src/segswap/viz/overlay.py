"""Side-by-side pair drawings: masks as a colour overlay, a sample of correspondences as lines.

Every picture segswap draws has a pixel budget: an image is drawn at the picture's height unless that
would make it more than :data:`MAX_ASPECT` times as wide, and then at that width, smaller, centred in
the height. A 60000×16 strip drawn 480 px high would be 1.8 million px wide (2.6 GB, and ten times that
while tinted).
"""

from __future__ import annotations

import cv2
import numpy as np

MASK_COLOUR = np.array([255, 64, 32], dtype=np.float32)  # RGB
#: The widest an image is drawn, as a multiple of the height it is drawn at.
MAX_ASPECT = 4


def fitted_size(shape: tuple, height: int, max_aspect: float = MAX_ASPECT) -> tuple[int, int]:
    """(width, height) of an image of ``shape`` (H×W...) drawn ``height`` px high, or smaller if it would
    then be wider than ``max_aspect × height``; aspect kept, each side at least 1 px."""
    h, w = shape[:2]
    scale = min(height / h, max_aspect * height / w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def tint(image: np.ndarray, mask: np.ndarray, colour=MASK_COLOUR, strength: float = 0.55) -> np.ndarray:
    """Blend ``colour`` into ``image`` (H×W×3 uint8) in proportion to ``mask`` (H×W in [0, 1])."""
    alpha = (np.clip(mask, 0, 1) * strength)[..., None]
    return (image.astype(np.float32) * (1 - alpha) + np.asarray(colour, np.float32) * alpha).round().astype(np.uint8)


def highlight(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` tinted by ``mask`` and its region (mask ≥ 0.5) outlined in white on black, which shows on
    any colour: a red-orange tint alone vanishes on a red subject."""
    out = tint(image, mask)
    contours, _ = cv2.findContours((mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    return out


#: The colour of keypoint inliers drawn on a pair's overlay (RGB): green, apart from the lines' hues.
KEYPOINT_COLOUR = (40, 220, 80)


def pair_overlay(image_a: np.ndarray, image_b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray,
                 matches: np.ndarray, max_lines: int = 60, height: int = 480, gap: int = 8, seed: int = 0,
                 keypoints: np.ndarray | None = None) -> np.ndarray:
    """Both images side by side at a common height (within :data:`MAX_ASPECT`), tinted by their masks,
    with correspondence lines.

    ``matches``: N×≥4 rows ``[xa, ya, xb, yb, ...]`` in each image's own pixels; at most ``max_lines``
    are drawn, spread over the whole set (a fixed-seed sample) rather than only the best. ``keypoints``:
    K×≥4 keypoint inliers, same layout, drawn as small green crosses in both images.
    """
    a, b = (_highlighted_at(image, mask, fitted_size(image.shape, height))
            for image, mask in ((image_a, mask_a), (image_b, mask_b)))
    canvas = np.full((height, a.shape[1] + gap + b.shape[1], 3), 255, np.uint8)
    top_a, top_b = (height - a.shape[0]) // 2, (height - b.shape[0]) // 2
    canvas[top_a:top_a + a.shape[0], : a.shape[1]] = a
    offset = a.shape[1] + gap
    canvas[top_b:top_b + b.shape[0], offset:] = b
    sa, sb = a.shape[1] / image_a.shape[1], b.shape[1] / image_b.shape[1]
    for xa, ya, xb, yb in ([] if keypoints is None else keypoints[:, :4]):
        for x, y in ((round(xa * sa), round(ya * sa) + top_a), (round(xb * sb) + offset, round(yb * sb) + top_b)):
            cv2.drawMarker(canvas, (x, y), KEYPOINT_COLOUR, cv2.MARKER_CROSS, 5, 1, cv2.LINE_AA)
    if len(matches):
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(matches), size=min(max_lines, len(matches)), replace=False)
        hues = np.linspace(0, 179, len(pick), endpoint=False).astype(np.uint8)
        colours = cv2.cvtColor(np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], 1)[None], cv2.COLOR_HSV2RGB)[0]
        for (xa, ya, xb, yb), colour in zip(matches[pick, :4], colours):
            pa = (round(xa * sa), round(ya * sa) + top_a)
            pb = (round(xb * sb) + offset, round(yb * sb) + top_b)
            c = tuple(int(v) for v in colour)
            cv2.line(canvas, pa, pb, c, 1, cv2.LINE_AA)
            cv2.circle(canvas, pa, 3, c, -1, cv2.LINE_AA)
            cv2.circle(canvas, pb, 3, c, -1, cv2.LINE_AA)
    return canvas


def _highlighted_at(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` and ``mask`` resized to ``size`` (w, h), then highlighted (so the outline keeps its width)."""
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return highlight(small, cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR))
