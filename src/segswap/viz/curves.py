"""Training curves drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

COLOURS = [(200, 60, 40), (40, 140, 40), (40, 80, 200), (160, 40, 160), (0, 150, 170), (120, 120, 0)]


def _panel(series: dict, title: str, size=(640, 300), log=False) -> np.ndarray:
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    margin = 40
    cv2.putText(img, title, (margin, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    values = [np.asarray(v[1], float) for v in series.values() if len(v[1])]
    if not values:
        return img
    allv = np.concatenate(values)
    allv = allv[np.isfinite(allv)]
    if log:
        allv = np.log10(np.clip(allv, 1e-6, None))
    lo, hi = (float(allv.min()), float(allv.max())) if len(allv) else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    xs_all = np.concatenate([np.asarray(v[0], float) for v in series.values()])
    x0, x1 = float(xs_all.min()), float(max(xs_all.max(), xs_all.min() + 1))
    cv2.rectangle(img, (margin, margin), (w - 10, h - margin), (180, 180, 180), 1)
    for k, (name, (xs, ys)) in enumerate(series.items()):
        ys = np.asarray(ys, float)
        if log:
            ys = np.log10(np.clip(ys, 1e-6, None))
        px = margin + (np.asarray(xs, float) - x0) / (x1 - x0) * (w - 10 - margin)
        py = h - margin - (ys - lo) / (hi - lo) * (h - 2 * margin)
        pts = np.stack([px, py], 1)[np.isfinite(py)].round().astype(np.int32)
        colour = COLOURS[k % len(COLOURS)]
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, colour, 1, cv2.LINE_AA)
        cv2.putText(img, name, (margin + 5 + 120 * k, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    label = (lambda v: f"1e{v:.1f}") if log else (lambda v: f"{v:.3g}")
    cv2.putText(img, label(hi), (2, margin + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, label(lo), (2, h - margin), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _read(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text().splitlines())) if path.is_file() else []


def _smooth(y: np.ndarray, k: int = 25) -> np.ndarray:
    if len(y) < k:
        return y
    return np.convolve(y, np.ones(k) / k, mode="valid")


def plot_training_curves(log_csv: Path, val_csv: Path, out_png: Path) -> None:
    """Loss terms (smoothed, log scale) and validation metrics, one panel each, into a PNG."""
    log, val = _read(Path(log_csv)), _read(Path(val_csv))
    losses = {}
    for key in ("total", "mask", "transported", "corr", "dice", "seg", "match"):
        ys = np.array([float(r[key]) for r in log if r.get(key)]) if log else np.zeros(0)
        sm = _smooth(ys)
        losses[key] = (np.arange(len(sm)) + (len(ys) - len(sm)), sm)
    metrics = {k: ([float(r["step"]) for r in val], [float(r[k]) for r in val])
               for k in (val[0].keys() if val else []) if k != "step"}
    panel = np.vstack([_panel(losses, "training losses (moving average, log10)", log=True),
                       _panel(metrics, "validation (held-out synthetic pairs)")])
    cv2.imwrite(str(out_png), panel)
