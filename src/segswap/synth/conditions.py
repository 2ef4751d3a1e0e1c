"""Conditions: what changes between two depictions of the same thing, applied to one image of a pair.

The paper's use case is matching across a change of light or depiction: a night photograph with its
daytime counterpart, an engraving with the painting it was copied from. ``segswap synth --conditions``
applies one of these transforms to image a or image b of a pair (never both, so every such pair
crosses a condition), on top of the composite and its optional style.

Three groups:

* **light** (``night``, ``dusk``) and **weather / season** (``haze``, ``snow``, ``foliage``) are
  photometric: per-pixel tone and colour curves, sensor noise, a small isotropic blur, and light added
  on top (lamps, halos, snowflakes). No pixel moves.
* **depiction** (``line_engraving``, ``halftone``, ``ink_wash``, ``watercolour``, ``pen_on_aged_paper``)
  redraws each pixel from its neighbourhood (screens, strokes, washes, paper) at the same place.

So the ground truth of the pair holds exactly. Each transform draws every choice from the generator it
is given and returns them, so a pair's ``meta.json`` says what was done and one seed gives the same
image. Each works on RGB uint8 images of any size and returns the same shape.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

ConditionFn = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, dict]]


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, unit-spread noise smooth over about ``scale`` pixels (stains, paper, haze density)."""
    h, w = shape
    small = rng.standard_normal((max(2, int(h / scale) + 2), max(2, int(w / scale) + 2))).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def _sensor_noise(rng: np.random.Generator, x: np.ndarray, level: float) -> np.ndarray:
    """Shot noise (grows with the signal) plus read noise, partly shared by the channels (luma grain)."""
    h, w = x.shape[:2]
    shot = np.sqrt(np.clip(x, 0, 1)) * level * rng.standard_normal(x.shape).astype(np.float32)
    read = level * 0.5 * rng.standard_normal((h, w, 1)).astype(np.float32)
    return x + shot + read


def _add_lights(rng: np.random.Generator, x: np.ndarray, count: int, colour: np.ndarray) -> list[dict]:
    """Lit windows (small warm rectangles) and street-light halos (Gaussian glows), added on top."""
    h, w = x.shape[:2]
    glow = np.zeros((h, w), np.float32)
    drawn = []
    for _ in range(count):
        cx, cy = float(rng.uniform(0, w)), float(rng.uniform(0, h * 0.8))
        if rng.random() < 0.5:  # a window: a small lit rectangle with a soft edge
            ww, hh = float(rng.uniform(0.01, 0.035) * w), float(rng.uniform(0.015, 0.05) * h)
            window = np.zeros((h, w), np.float32)
            cv2.rectangle(window, (int(cx - ww / 2), int(cy - hh / 2)), (int(cx + ww / 2), int(cy + hh / 2)), 1.0, -1)
            glow += cv2.GaussianBlur(window, (0, 0), 1.0) * float(rng.uniform(0.5, 0.9))
            drawn.append({"window": [cx, cy, ww, hh]})
        else:  # a street light: a bright core and a wide halo
            radius = float(rng.uniform(0.01, 0.03) * w)
            yy, xx = np.ogrid[0:h, 0:w]
            d2 = ((xx - cx) ** 2 + (yy - cy) ** 2).astype(np.float32)
            glow += np.exp(-d2 / (2 * radius**2)) + 0.35 * np.exp(-d2 / (2 * (4 * radius) ** 2))
            drawn.append({"lamp": [cx, cy, radius]})
    x += glow[..., None] * colour
    return drawn


def night(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A night shot: exposure and gamma drop, a cold white balance, lamps and lit windows, sensor noise
    pushed up by the camera's gain, and the blur of a long exposure."""
    gain = float(rng.uniform(0.12, 0.3))
    gamma = float(rng.uniform(1.8, 2.6))
    kelvin_tint = np.array([rng.uniform(0.55, 0.8), rng.uniform(0.75, 0.92), rng.uniform(1.0, 1.25)], np.float32)
    x = (_float(image) ** gamma) * gain * kelvin_tint
    lamp_colour = np.array([1.0, rng.uniform(0.7, 0.85), rng.uniform(0.35, 0.55)], np.float32)
    lights = _add_lights(rng, x, int(rng.integers(2, 9)), lamp_colour)
    blur = float(rng.uniform(0.4, 1.4))
    x = cv2.GaussianBlur(x, (0, 0), blur)
    noise = float(rng.uniform(0.02, 0.06))
    x = _sensor_noise(rng, x, noise)
    return _uint8(x), {"gain": gain, "gamma": gamma, "tint": kelvin_tint.tolist(), "lights": lights,
                       "blur": blur, "noise": noise}


def dusk(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Dusk: a milder exposure drop, warm low sun in the sky fading to a blue-violet ground, some noise."""
    gain = float(rng.uniform(0.4, 0.7))
    gamma = float(rng.uniform(1.2, 1.7))
    h = image.shape[0]
    top = np.array([1.15, rng.uniform(0.75, 0.95), rng.uniform(0.5, 0.7)], np.float32)
    bottom = np.array([rng.uniform(0.6, 0.8), rng.uniform(0.6, 0.8), rng.uniform(0.95, 1.15)], np.float32)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    x = (_float(image) ** gamma) * gain * (top * (1 - ramp) + bottom * ramp)
    lights = _add_lights(rng, x, int(rng.integers(0, 4)), np.array([1.0, 0.8, 0.5], np.float32))
    noise = float(rng.uniform(0.01, 0.03))
    x = _sensor_noise(rng, cv2.GaussianBlur(x, (0, 0), 0.5), noise)
    return _uint8(x), {"gain": gain, "gamma": gamma, "top_tint": top.tolist(), "bottom_tint": bottom.tolist(),
                       "lights": lights, "noise": noise}


def haze(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Haze or fog (the atmospheric scattering model I = J t + A (1 - t)): transmission falling towards
    the top of the frame (farther away, in most photos) with patchy density, a pale airlight."""
    h, w = image.shape[:2]
    near, far = float(rng.uniform(0.55, 0.85)), float(rng.uniform(0.2, 0.45))
    ramp = np.linspace(far, near, h, dtype=np.float32)[:, None]
    patchiness = float(rng.uniform(0.0, 0.1))
    transmission = np.clip(ramp + patchiness * _smooth_noise(rng, (h, w), h / 3), 0.1, 1.0)[..., None]
    airlight = np.array([rng.uniform(0.75, 0.9)] * 2 + [rng.uniform(0.8, 0.95)], np.float32)
    x = cv2.GaussianBlur(_float(image), (0, 0), 0.6) * transmission + airlight * (1 - transmission)
    return _uint8(x), {"near_transmission": near, "far_transmission": far, "patchiness": patchiness,
                       "airlight": airlight.tolist()}


def snow(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A snowy winter day: colours drained, shadows lifted towards a cold white, falling flakes."""
    saturation = float(rng.uniform(0.15, 0.45))
    lift = float(rng.uniform(0.2, 0.45))
    x = _float(image)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * saturation
    cold_white = np.array([0.92, 0.95, 1.0], np.float32)
    x = x * (1 - lift) + cold_white * lift
    h, w = x.shape[:2]
    flakes = int(rng.uniform(0.0005, 0.003) * h * w)
    layer = np.zeros((h, w), np.float32)
    ys, xs = rng.integers(0, h, flakes), rng.integers(0, w, flakes)
    layer[ys, xs] = rng.uniform(0.5, 1.0, flakes).astype(np.float32)
    layer = np.clip(cv2.GaussianBlur(layer, (0, 0), 0.8) * 4, 0, 1)[..., None]
    x = x * (1 - layer) + layer
    return _uint8(x), {"saturation": saturation, "lift": lift, "flakes": flakes}


def foliage(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Another season's vegetation: green hues turned to autumn yellow-red or to dry summer ochre, with
    the sky and everything else left alone, plus a slight warm cast."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)  # hue on 0..255
    shift = float(rng.uniform(-75, -35))  # green (≈ 85) towards orange-red (≈ 10-40)
    greenness = np.exp(-((hsv[..., 0] - 85.0) ** 2) / (2 * 25.0**2)) * np.clip(hsv[..., 1] / 60.0, 0, 1)
    hsv[..., 0] = np.mod(hsv[..., 0] + shift * greenness, 256.0)
    boost = float(rng.uniform(0.9, 1.3))
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + (boost - 1) * greenness), 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32) / 255.0
    warmth = np.array([rng.uniform(1.0, 1.08), 1.0, rng.uniform(0.88, 1.0)], np.float32)
    return _uint8(out * warmth), {"hue_shift": shift, "saturation_boost": boost, "warmth": warmth.tolist()}


def _paper(rng: np.random.Generator, shape: tuple[int, int], colour: np.ndarray, grain: float,
           stains: float) -> np.ndarray:
    """Paper: a base colour with fine grain and large, faint stains (H×W×3 float in 0..1)."""
    fine = rng.standard_normal(shape).astype(np.float32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.7)
    blotch = _smooth_noise(rng, shape, min(shape) / 4)
    shade = 1 + grain * fine + stains * blotch
    return np.clip(colour[None, None, :] * shade[..., None], 0, 1)


def line_engraving(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A copperplate line engraving: one family of parallel lines whose width follows the tone and whose
    course bends with the forms (the phase follows smoothed brightness), cross-hatched in the shadows,
    black ink on white paper, with contours."""
    grey = cv2.GaussianBlur(_grey(image), (0, 0), 1.2)
    h, w = grey.shape
    period = float(rng.uniform(3.0, 5.5))
    angle = float(rng.uniform(0, 180))
    bend = float(rng.uniform(1.0, 3.0))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    form = cv2.GaussianBlur(grey, (0, 0), 6.0)

    def lines(theta: float, darkness: np.ndarray) -> np.ndarray:
        t = np.deg2rad(theta)
        phase = ((xx * np.cos(t) + yy * np.sin(t)) / period + bend * form) % 1.0
        return (np.abs(phase - 0.5) * 2 < np.clip(darkness, 0, 0.85)).astype(np.float32)

    ink = lines(angle, 1.0 - grey)
    cross_from = float(rng.uniform(0.3, 0.5))
    ink = np.maximum(ink, lines(angle + 90, (cross_from - grey) / cross_from))
    edges = cv2.Canny(_uint8(grey), 40, 110).astype(np.float32) / 255.0
    ink = cv2.GaussianBlur(np.maximum(ink, edges), (0, 0), 0.5)[..., None]
    paper = np.array([rng.uniform(0.9, 0.98), rng.uniform(0.88, 0.96), rng.uniform(0.82, 0.92)], np.float32)
    ink_colour = np.array([rng.uniform(0.02, 0.12)] * 3, np.float32)
    out = paper * (1 - ink) + ink_colour * ink
    return _uint8(out), {"period": period, "angle": angle, "bend": bend, "cross_hatch_below": cross_from,
                         "paper": paper.tolist(), "ink": ink_colour.tolist()}


def halftone(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A halftone print: each ink on its own rotated screen of dots whose area follows that ink's
    coverage (CMYK at the classic angles, or one black screen for a newspaper print)."""
    h, w = image.shape[:2]
    cell = float(rng.uniform(3.5, 6.5))
    colour = bool(rng.random() < 0.6)
    x = cv2.GaussianBlur(_float(image), (0, 0), cell / 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def screen(coverage: np.ndarray, angle_deg: float) -> np.ndarray:
        t = np.deg2rad(angle_deg)
        u = (xx * np.cos(t) + yy * np.sin(t)) / cell
        v = (-xx * np.sin(t) + yy * np.cos(t)) / cell
        distance = np.hypot(u - np.floor(u) - 0.5, v - np.floor(v) - 0.5)
        # A dot of radius r covers π r² of the unit cell: r from the coverage, soft by a quarter pixel.
        radius = np.sqrt(np.clip(coverage, 0, 1) / np.pi)
        return np.clip((radius - distance) * cell * 2 + 0.5, 0, 1)

    paper = np.array([rng.uniform(0.92, 1.0), rng.uniform(0.9, 0.98), rng.uniform(0.85, 0.95)], np.float32)
    if colour:
        k = 1 - x.max(axis=2)
        cmy = (1 - x - k[..., None]) / np.clip(1 - k[..., None], 1e-3, 1)
        out = np.ones_like(x) * paper
        for channel, angle in zip(range(3), (15.0, 75.0, 0.0)):
            dots = screen(cmy[..., channel], angle)
            out[..., channel] *= 1 - 0.9 * dots  # cyan absorbs red, magenta green, yellow blue
        out *= 1 - 0.95 * screen(k, 45.0)[..., None]
    else:
        dots = screen(1 - x.mean(axis=2), 45.0)[..., None]
        out = paper * (1 - dots) + 0.08 * dots
    return _uint8(out), {"cell": cell, "colour": colour, "paper": paper.tolist()}


def ink_wash(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """East-Asian ink wash: a few diluted ink tones that bleed into each other, dark brush contours,
    on warm rice paper."""
    levels = int(rng.integers(3, 6))
    small = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    smooth = cv2.bilateralFilter(small, 9, 60, 7)
    grey = cv2.resize(_grey(smooth), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    tones = np.floor(grey * levels) / (levels - 1)
    bleed = float(rng.uniform(1.5, 4.0))
    wash = cv2.GaussianBlur(np.clip(tones, 0, 1), (0, 0), bleed)
    edges = cv2.Canny(_uint8(cv2.GaussianBlur(grey, (0, 0), 1.5)), 30, 90)
    brush = int(rng.integers(1, 3))
    strokes = cv2.GaussianBlur(cv2.dilate(edges, np.ones((2 * brush - 1, 2 * brush - 1), np.uint8)).astype(np.float32) / 255,
                               (0, 0), 0.8)
    darkness = np.clip((1 - wash) * float(rng.uniform(0.6, 0.9)) + strokes * 0.85, 0, 1)[..., None]
    paper = _paper(rng, grey.shape, np.array([0.95, 0.92, 0.84], np.float32), 0.03, 0.02)
    ink_colour = np.array([0.06, 0.06, 0.08], np.float32)
    out = paper * (1 - darkness) + ink_colour * darkness
    return _uint8(out), {"levels": levels, "bleed": bleed, "brush": brush}


def watercolour(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Watercolour: flattened, lighter colour areas, pigment pooling at their edges (dark wet edges),
    granulation and the paper's texture showing through."""
    sigma_s = float(rng.uniform(20, 60))
    sigma_r = float(rng.uniform(0.3, 0.6))
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    flat = cv2.edgePreservingFilter(small, flags=cv2.RECURS_FILTER, sigma_s=sigma_s, sigma_r=sigma_r)
    x = cv2.resize(flat, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    dilution = float(rng.uniform(0.2, 0.45))
    x = x * (1 - dilution) + dilution  # thinner pigment: lighter colours
    lum = x.mean(axis=2)
    wet_edges = np.clip(cv2.GaussianBlur(lum, (0, 0), 3.0) - lum, 0, None) * float(rng.uniform(2.0, 4.0))
    paper = _paper(rng, (h, w), np.array([1.0, 0.99, 0.96], np.float32), float(rng.uniform(0.03, 0.07)), 0.02)
    granulation = 1 + 0.06 * _smooth_noise(rng, (h, w), 2.0)[..., None]
    out = x * granulation * (1 - wet_edges[..., None]) * paper
    return _uint8(out), {"sigma_s": sigma_s, "sigma_r": sigma_r, "dilution": dilution}


def pen_on_aged_paper(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A pen drawing on old paper: contour and shading strokes (difference of Gaussians, thresholded)
    in faded iron-gall brown, on yellowed paper with stains, foxing spots and darkened borders."""
    grey = _grey(image)
    sigma = float(rng.uniform(0.8, 1.6))
    dog = cv2.GaussianBlur(grey, (0, 0), sigma) - cv2.GaussianBlur(grey, (0, 0), sigma * 1.6)
    sharpness = float(rng.uniform(60, 140))
    strokes = 1 - np.clip(1 + np.tanh(sharpness * (dog + 0.004)), 0, 1)  # XDoG: ink where the DoG dips
    shading = np.clip(0.55 - grey, 0, 0.55) * float(rng.uniform(0.3, 0.8))  # the darkest parts hatched by wash
    ink = np.clip(strokes + shading, 0, 1)[..., None]
    h, w = grey.shape
    age = float(rng.uniform(0.0, 1.0))
    paper_colour = np.array([0.93, 0.86 - 0.06 * age, 0.7 - 0.12 * age], np.float32)
    paper = _paper(rng, (h, w), paper_colour, 0.03, 0.04 + 0.05 * age)
    spots = int(rng.integers(0, 25))
    foxing = np.zeros((h, w), np.float32)
    for _ in range(spots):
        cv2.circle(foxing, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.uniform(1, 4)), 1.0, -1)
    foxing = cv2.GaussianBlur(foxing, (0, 0), 1.5)[..., None] * 0.35
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    border = np.clip(np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)) - 0.8, 0, None)[..., None] * 0.4
    paper = paper * (1 - foxing * np.array([0.2, 0.5, 0.8], np.float32)) * (1 - border)
    ink_colour = np.array([rng.uniform(0.2, 0.35), rng.uniform(0.12, 0.2), rng.uniform(0.05, 0.12)], np.float32)
    out = paper * (1 - ink * 0.9) + ink_colour * ink * 0.9
    return _uint8(out), {"sigma": sigma, "sharpness": sharpness, "age": age, "foxing_spots": spots,
                         "ink": ink_colour.tolist()}


#: Every condition by group; the group decides whether the transform is photometric (moves no pixel
#: and redraws none from its neighbours, bar a small blur) or redraws the picture in place.
GROUPS: dict[str, dict[str, ConditionFn]] = {
    "light": {"night": night, "dusk": dusk},
    "weather": {"haze": haze, "snow": snow, "foliage": foliage},
    "depiction": {"line_engraving": line_engraving, "halftone": halftone, "ink_wash": ink_wash,
                  "watercolour": watercolour, "pen_on_aged_paper": pen_on_aged_paper},
}
CONDITIONS: dict[str, ConditionFn] = {name: fn for group in GROUPS.values() for name, fn in group.items()}
PHOTOMETRIC = frozenset(GROUPS["light"]) | frozenset(GROUPS["weather"])
#: Mixed into the pair's seed for the condition draws, so adding conditions to a run leaves every
#: composite (and each style) exactly as the same seed made it without them.
CONDITION_STREAM = 0xC0D1


def group_of(name: str) -> str:
    return next(group for group, members in GROUPS.items() if name in members)


def parse_conditions(text: str | None) -> tuple[str, ...]:
    """``"night,haze"``, a group name (``light``, ``weather``, ``depiction``) or ``all`` → condition names,
    in the order of :data:`CONDITIONS`. Raises ValueError naming what is unknown."""
    if not text:
        return ()
    chosen = set()
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        if word == "all":
            chosen |= set(CONDITIONS)
        elif word in GROUPS:
            chosen |= set(GROUPS[word])
        elif word in CONDITIONS:
            chosen.add(word)
        else:
            raise ValueError(f"unknown condition {word!r}; choose from all, {', '.join(GROUPS)}, {', '.join(CONDITIONS)}")
    return tuple(name for name in CONDITIONS if name in chosen)


def apply_condition(image: np.ndarray, name: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """``image`` under condition ``name``, and every choice drawn (for meta.json)."""
    out, params = CONDITIONS[name](image, rng)
    return out, {"name": name, "group": group_of(name), **params}
