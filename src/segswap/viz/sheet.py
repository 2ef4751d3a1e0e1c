"""Contact sheet of synthetic pairs: both images tinted by their masks, with ground-truth matches drawn."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .overlay import pair_overlay

ROW_HEIGHT = 200
COLUMNS = 2
GAP = 6


def pair_tile(pair_dir: Path, height: int = ROW_HEIGHT, lines: int = 12) -> np.ndarray:
    """One pair drawn side by side: masks tinted, a sample of cell-to-cell correspondences as lines."""
    a = cv2.cvtColor(cv2.imread(str(pair_dir / "a.jpg")), cv2.COLOR_BGR2RGB)
    b = cv2.cvtColor(cv2.imread(str(pair_dir / "b.jpg")), cv2.COLOR_BGR2RGB)
    mask_a = cv2.imread(str(pair_dir / "mask_a.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    mask_b = cv2.imread(str(pair_dir / "mask_b.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    with np.load(pair_dir / "gt.npz") as gt:
        token_mask, flow = gt["mask_a"], gt["flow_ab"]
    t = token_mask.shape[0]
    cell = a.shape[0] / t
    ys, xs = np.nonzero(token_mask >= 0.5)
    matches = np.stack([(xs + 0.5) * cell, (ys + 0.5) * cell,
                        flow[ys, xs, 0] * b.shape[1], flow[ys, xs, 1] * b.shape[0]], axis=1)
    # A light tint (half strength) keeps the pasted objects themselves visible.
    return pair_overlay(a, b, mask_a * 0.5, mask_b * 0.5, matches, max_lines=lines, height=height, gap=GAP)


def contact_sheet(pair_dirs: list[Path], columns: int = COLUMNS, height: int = ROW_HEIGHT) -> np.ndarray:
    """Pairs laid out ``columns`` to a row on a white sheet (RGB uint8)."""
    tiles = [pair_tile(d, height) for d in pair_dirs]
    if not tiles:
        return np.full((height, height, 3), 255, np.uint8)
    width = max(t.shape[1] for t in tiles)
    rows = []
    for start in range(0, len(tiles), columns):
        row = np.full((height, columns * (width + GAP), 3), 255, np.uint8)
        for k, tile in enumerate(tiles[start : start + columns]):
            row[:, k * (width + GAP) : k * (width + GAP) + tile.shape[1]] = tile
        rows.append(row)
        rows.append(np.full((GAP, row.shape[1], 3), 255, np.uint8))
    return np.vstack(rows[:-1])


def save_contact_sheet(out_dir: Path, path: Path, count: int = 12, quality: int = 85) -> Path:
    """Sheet of the first ``count`` pairs listed in ``out_dir/manifest.jsonl``, written as JPEG or PNG."""
    lines = (out_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    dirs = [out_dir / json.loads(line)["id"] for line in lines]
    sheet = cv2.cvtColor(contact_sheet(dirs), cv2.COLOR_RGB2BGR)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), sheet, params):
        raise OSError(f"cannot write {path}")
    return path
