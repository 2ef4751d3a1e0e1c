"""Side-by-side pair drawings: masks as a colour overlay, a sample of correspondences as lines."""

from __future__ import annotations

import cv2
import numpy as np

MASK_COLOUR = np.array([255, 64, 32], dtype=np.float32)  # RGB


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


def pair_overlay(image_a: np.ndarray, image_b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray,
                 matches: np.ndarray, max_lines: int = 60, height: int = 480, gap: int = 8, seed: int = 0) -> np.ndarray:
    """Both images side by side at a common height, tinted by their masks, with correspondence lines.

    ``matches``: N×≥4 rows ``[xa, ya, xb, yb, ...]`` in each image's own pixels; at most ``max_lines``
    are drawn, spread over the whole set (a fixed-seed sample) rather than only the best.
    """
    sa, sb = height / image_a.shape[0], height / image_b.shape[0]
    a, b = (_highlighted_at(image, mask, height) for image, mask in ((image_a, mask_a), (image_b, mask_b)))
    canvas = np.full((height, a.shape[1] + gap + b.shape[1], 3), 255, np.uint8)
    canvas[:, : a.shape[1]] = a
    offset = a.shape[1] + gap
    canvas[:, offset:] = b
    if len(matches):
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(matches), size=min(max_lines, len(matches)), replace=False)
        hues = np.linspace(0, 179, len(pick), endpoint=False).astype(np.uint8)
        colours = cv2.cvtColor(np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], 1)[None], cv2.COLOR_HSV2RGB)[0]
        for (xa, ya, xb, yb), colour in zip(matches[pick, :4], colours):
            pa = (round(xa * sa), round(ya * sa))
            pb = (round(xb * sb) + offset, round(yb * sb))
            c = tuple(int(v) for v in colour)
            cv2.line(canvas, pa, pb, c, 1, cv2.LINE_AA)
            cv2.circle(canvas, pa, 3, c, -1, cv2.LINE_AA)
            cv2.circle(canvas, pb, 3, c, -1, cv2.LINE_AA)
    return canvas


def _highlighted_at(image: np.ndarray, mask: np.ndarray, height: int) -> np.ndarray:
    """``image`` and ``mask`` resized to ``height``, then highlighted (so the outline keeps its width)."""
    size = (max(1, round(image.shape[1] * height / image.shape[0])), height)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return highlight(small, cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR))
