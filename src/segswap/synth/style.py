"""Style augmentation: make a photo look like a painting, an engraving, a drawing or a night shot.

The authors restyle with an AdaIN network trained on paintings; no such decoder ships in a package we
can install, so ``band_adain`` applies AdaIN's idea (match each channel's mean and spread to a style
image's) to the bands of a Laplacian pyramid in Lab instead of to learned features. It moves colour,
contrast and texture energy per scale, in a few milliseconds. The other kinds are OpenCV's
non-photorealistic filters, run at half resolution where they are slow, and two hand-made looks.

Every kind only changes pixel values near where they are, never moves content, so the ground truth
holds. Each returns the image and the parameters it drew; ``apply_style`` mixes the result with the
input at a random strength.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

STRENGTH_RANGE = (0.6, 1.0)
#: Which images of a pair get a style (the rest stay photos).
TARGETS = ("none", "a", "b", "both")
TARGET_WEIGHTS = (0.1, 0.25, 0.25, 0.4)
PYRAMID_LEVELS = 4


def colour_transfer(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Reinhard et al.: match Lab mean and standard deviation to a style image."""
    k = int(rng.integers(len(styles)))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(styles[k], cv2.COLOR_RGB2LAB).astype(np.float32)
    out = _match_stats(lab, ref)
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB), {"style_image": k}


def band_adain(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """AdaIN on Laplacian-pyramid bands in Lab: per band and channel, match mean and spread to the style."""
    k = int(rng.integers(len(styles)))
    h, w = image.shape[:2]
    ref = cv2.resize(styles[k], (w, h), interpolation=cv2.INTER_AREA)
    content = _laplacian_pyramid(cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32))
    style = _laplacian_pyramid(cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32))
    bands = [_match_stats(c, s) for c, s in zip(content, style)]
    out = bands[-1]
    for band in reversed(bands[:-1]):
        out = cv2.pyrUp(out, dstsize=(band.shape[1], band.shape[0])) + band
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB), {"style_image": k}


def painting(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """``cv2.stylization`` (edge-preserving smoothing + edge darkening), at half resolution."""
    sigma_s = float(rng.uniform(30, 90))
    sigma_r = float(rng.uniform(0.25, 0.6))
    out = _at_half(image, lambda x: cv2.stylization(x, sigma_s=sigma_s, sigma_r=sigma_r))
    return out, {"sigma_s": sigma_s, "sigma_r": sigma_r}


def oil(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """``cv2.xphoto.oilPainting``, at half resolution."""
    size = int(rng.integers(3, 8))
    dyn = int(rng.integers(1, 4))
    out = _at_half(image, lambda x: cv2.xphoto.oilPainting(x, size, dyn))
    return out, {"size": size, "dyn_ratio": dyn}


def pencil(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """``cv2.pencilSketch``, grey or coloured, at half resolution."""
    sigma_s = float(rng.uniform(20, 80))
    sigma_r = float(rng.uniform(0.05, 0.12))
    shade = float(rng.uniform(0.02, 0.08))
    coloured = bool(rng.random() < 0.4)

    def sketch(x: np.ndarray) -> np.ndarray:
        grey, colour = cv2.pencilSketch(x, sigma_s=sigma_s, sigma_r=sigma_r, shade_factor=shade)
        return colour if coloured else cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)

    return _at_half(image, sketch), {"sigma_s": sigma_s, "sigma_r": sigma_r, "shade": shade, "coloured": coloured}


def engraving(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Ink hatching on paper: line screens at three angles whose strokes thicken with darkness."""
    period = float(rng.uniform(3.5, 7.0))
    angle = float(rng.uniform(0, 180))
    ink = np.array([rng.uniform(10, 60), rng.uniform(10, 45), rng.uniform(5, 35)], np.float32)
    paper = np.array([rng.uniform(215, 250), rng.uniform(205, 240), rng.uniform(180, 225)], np.float32)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    grey = cv2.GaussianBlur(cv2.equalizeHist((grey * 255).astype(np.uint8)), (0, 0), 1.0).astype(np.float32) / 255.0
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inked = np.zeros_like(grey)
    for level, (offset, threshold) in enumerate(((0.0, 0.8), (60.0, 0.55), (120.0, 0.3))):
        t = np.deg2rad(angle + offset)
        phase = ((xx * np.cos(t) + yy * np.sin(t)) / period) % 1.0
        width = np.clip((threshold - grey) / threshold, 0.0, 0.7)
        inked = np.maximum(inked, (np.abs(phase - 0.5) * 2 < width).astype(np.float32))
    edges = cv2.Canny((grey * 255).astype(np.uint8), 60, 150) > 0
    inked[edges] = 1.0
    inked = cv2.GaussianBlur(inked, (0, 0), 0.6)[..., None]
    out = paper * (1 - inked) + ink * inked
    return out.astype(np.uint8), {"period": period, "angle": angle, "ink": ink.tolist(), "paper": paper.tolist()}


def night(image: np.ndarray, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Dark, blue, noisy: gamma, a cold tint, sensor noise and a little blur."""
    gamma = float(rng.uniform(1.6, 2.8))
    gain = float(rng.uniform(0.35, 0.7))
    tint = np.array([rng.uniform(0.5, 0.75), rng.uniform(0.7, 0.9), rng.uniform(1.0, 1.2)], np.float32)
    noise = float(rng.uniform(0.01, 0.04))
    x = (image.astype(np.float32) / 255.0) ** gamma * gain * tint
    x = cv2.GaussianBlur(x, (0, 0), 0.7)
    x += rng.normal(0.0, noise, size=x.shape[:2])[..., None].astype(np.float32)
    x += rng.normal(0.0, noise / 2, size=x.shape).astype(np.float32)
    out = np.clip(x * 255.0, 0, 255).astype(np.uint8)
    return out, {"gamma": gamma, "gain": gain, "tint": tint.tolist(), "noise": noise}


StyleFn = Callable[[np.ndarray, np.random.Generator, list], tuple[np.ndarray, dict]]
#: Kinds that need style images (paintings); skipped when none are given.
NEEDS_STYLE_IMAGES = {"colour_transfer", "band_adain"}
KINDS: dict[str, StyleFn] = {
    "colour_transfer": colour_transfer,
    "band_adain": band_adain,
    "painting": painting,
    "oil": oil,
    "pencil": pencil,
    "engraving": engraving,
    "night": night,
}


def available_kinds(have_style_images: bool) -> list[str]:
    return [k for k in KINDS if have_style_images or k not in NEEDS_STYLE_IMAGES]


def apply_style(image: np.ndarray, kind: str, rng: np.random.Generator, styles: list[np.ndarray]) -> tuple[np.ndarray, dict]:
    """Restyle ``image`` with ``kind`` at a random strength; returns the image and every choice made."""
    strength = float(rng.uniform(*STRENGTH_RANGE))
    styled, params = KINDS[kind](image, rng, styles)
    out = cv2.addWeighted(styled, strength, image, 1.0 - strength, 0.0)
    return out, {"kind": kind, "strength": strength, **params}


def _match_stats(content: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Per channel, give ``content`` the mean and standard deviation of ``style`` (float32 H×W×3)."""
    c_mean, c_std = (v.ravel().astype(np.float32) for v in cv2.meanStdDev(content))
    s_mean, s_std = (v.ravel().astype(np.float32) for v in cv2.meanStdDev(style))
    gain = s_std / (c_std + 1e-3)
    return content * gain + (s_mean - c_mean * gain)


def _laplacian_pyramid(x: np.ndarray) -> list[np.ndarray]:
    bands = []
    for _ in range(PYRAMID_LEVELS - 1):
        down = cv2.pyrDown(x)
        bands.append(x - cv2.pyrUp(down, dstsize=(x.shape[1], x.shape[0])))
        x = down
    return bands + [x]


def _at_half(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(fn(small), (w, h), interpolation=cv2.INTER_LINEAR)
