"""Contact sheet of image pairs: both images tinted by their masks, with a sample of matches drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .overlay import pair_overlay

ROW_HEIGHT = 200
COLUMNS = 2
GAP = 6


def pair_tile(image_a: np.ndarray, image_b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray, matches: np.ndarray,
              height: int = ROW_HEIGHT, lines: int = 12) -> np.ndarray:
    """One pair side by side (RGB uint8 images, masks in [0, 1] at their size): masks tinted, up to
    ``lines`` of the ``matches`` (N×4: xa, ya, xb, yb in pixels) drawn."""
    # A light tint (half strength) keeps the pasted objects themselves visible.
    return pair_overlay(image_a, image_b, mask_a * 0.5, mask_b * 0.5, matches, max_lines=lines, height=height, gap=GAP)


def caption_tile(tile: np.ndarray, captions: list[str], band: int = 16) -> np.ndarray:
    """``tile`` (images side by side, ``GAP`` apart, equal widths) with one caption per image written on
    a dark band along its bottom edge; the tile keeps its size, so a sheet's rows stay aligned."""
    out = tile.copy()
    width = (tile.shape[1] - GAP * (len(captions) - 1)) // max(1, len(captions))
    for k, text in enumerate(captions):
        x0 = k * (width + GAP)
        strip = out[-band:, x0:x0 + width]
        strip[:] = (strip.astype(np.float32) * 0.35).astype(np.uint8)
        cv2.putText(out, text, (x0 + 3, tile.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def contact_sheet(tiles: list[np.ndarray], columns: int = COLUMNS, height: int = ROW_HEIGHT) -> np.ndarray:
    """Tiles of one ``height`` laid out ``columns`` to a row on a white sheet (RGB uint8)."""
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


def save_sheet(sheet: np.ndarray, path: Path, quality: int = 85) -> Path:
    """Write an RGB sheet as JPEG or PNG (by ``path``'s suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"cannot write {path}")
    return path
