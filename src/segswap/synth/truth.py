"""Exact ground truth of a synthetic pair, from the transforms that made it.

Each image keeps its canvas label map (which object shows at each canvas pixel, after occlusion),
its frame warp and, per object, the affine map from the object's source pixels to the canvas. A point
of image x maps to image y by: frame → canvas (warp), source ← canvas (inverse affine of x), source →
canvas of y (affine of y), canvas → frame (inverse warp of y). A point counts only if the same object
is visible at both ends.

Outputs, with ``S`` the image side and ``T = S / stride`` the token grid:

* full-resolution masks (S×S, bool): pixels whose object point is visible in the other image;
* token masks (T×T, float32): the fraction of each cell covered by that full-resolution mask, kept
  for cells with a point visible in the other image (below), 0 elsewhere;
* token flows (T×T×2, float32): for each cell centre (or, where the centre is not visible in the
  other image, the nearest point of the cell that is), where the same point is in the other image,
  (x, y) normalised to [0, 1] (pixel edges at 0 and 1); 0 where the token mask is 0.

Why no cell-level round trip: sending a cell to the other image and back through *that* image's cell
flow returns home for only about one in r² cells when the object is r times larger in one image (many
cells land in one), so such a check dropped a third of the object cells in a scale-dependent,
pseudo-random pattern (46 of 75 kept on average at 320 px; lab/truth_round_trip.py). The
full-resolution mask is already consistent both ways (a point counts only if its object is visible at both ends); the
authors' generator, likewise, multiplies soft bilinear masks instead of checking cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import FrameWarp, apply_affine, invert_affine


@dataclass
class ImageGeometry:
    labels: np.ndarray  # canvas (P, P) uint8: object index on top at each canvas pixel, 0 = background
    warp: FrameWarp
    matrices: dict[int, np.ndarray]  # object index → 2×3 source→canvas affine

    def __post_init__(self):
        # Canvas pixels that the final frame shows: the frame's outline through the warp.
        covered = np.zeros(self.labels.shape, np.uint8)
        outline = np.round(self.warp.frame_outline() * 4).astype(np.int32)
        cv2.fillPoly(covered, [outline], 1, lineType=cv2.LINE_8, shift=2)
        self.visible = np.where(covered > 0, self.labels, 0).astype(np.uint8)

    def label_at(self, canvas_points: np.ndarray) -> np.ndarray:
        """Visible object index at canvas points (nearest pixel), 0 outside the canvas."""
        ij = np.rint(canvas_points).astype(np.int64)
        h, w = self.visible.shape
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
        out = np.zeros(len(ij), np.uint8)
        out[inside] = self.visible[ij[inside, 1], ij[inside, 0]]
        return out


@dataclass
class GroundTruth:
    full_a: np.ndarray
    full_b: np.ndarray
    mask_a: np.ndarray
    mask_b: np.ndarray
    flow_ab: np.ndarray
    flow_ba: np.ndarray

    def cells(self, threshold: float = 0.5) -> tuple[int, int]:
        """Cells whose token mask reaches ``threshold``, in a and in b."""
        return int((self.mask_a >= threshold).sum()), int((self.mask_b >= threshold).sum())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mask_a": self.mask_a, "mask_b": self.mask_b, "flow_ab": self.flow_ab, "flow_ba": self.flow_ba}


def transfer(x: ImageGeometry, y: ImageGeometry, canvas_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canvas points of x → canvas points of y showing the same object point, and which are valid."""
    labels = x.label_at(canvas_points)
    out = np.zeros_like(canvas_points)
    valid = np.zeros(len(canvas_points), bool)
    for k, matrix_x in x.matrices.items():
        if k not in y.matrices:
            continue
        sel = labels == k
        if not sel.any():
            continue
        source = apply_affine(invert_affine(matrix_x), canvas_points[sel])
        out[sel] = apply_affine(y.matrices[k], source)
        valid[sel] = y.label_at(out[sel]) == k
    return out, valid


def matchable_mask(x: ImageGeometry, y: ImageGeometry) -> np.ndarray:
    """Full-resolution mask of x's pixels whose object point is visible in y."""
    size, m = x.warp.size, x.warp.margin
    dense = x.warp.dense()
    if dense is None:
        rows, cols = np.nonzero(x.visible[m : m + size, m : m + size])
        canvas = np.stack([cols + m, rows + m], axis=1).astype(np.float64)
    else:
        # Candidates by a fast nearest-pixel remap; transfer() re-reads each label exactly.
        shown = cv2.remap(x.visible, dense, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rows, cols = np.nonzero(shown)
        canvas = dense[rows, cols].astype(np.float64)
    _, valid = transfer(x, y, canvas)
    mask = np.zeros((size, size), bool)
    mask[rows[valid], cols[valid]] = True
    return mask


def cell_centres(size: int, stride: int) -> np.ndarray:
    """Frame coordinates (T*T, 2) of the token cells' centres, row-major."""
    c = np.arange(size // stride) * stride + (stride - 1) / 2
    return np.stack(np.meshgrid(c, c), axis=-1).reshape(-1, 2)


def _send(x: ImageGeometry, y: ImageGeometry, frame_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame points of x → frame points of y, and which are valid (object visible at both ends)."""
    size = x.warp.size
    canvas_y, valid = transfer(x, y, x.warp.to_canvas(frame_points))
    frame_y, found = y.warp.from_canvas(canvas_y)
    inside = (frame_y >= -0.5).all(axis=1) & (frame_y < size - 0.5).all(axis=1)
    return frame_y, valid & found & inside


def token_flow(x: ImageGeometry, y: ImageGeometry, stride: int, usable: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Frame coordinates in y of a point of each of x's cells, and which cells have one.

    The point is the cell centre when the centre's object point is visible in y. For the ``usable``
    cells (T*T bool, e.g. those partly covered by the matchable mask) whose centre is not — it sits on
    an occluding edge or in a notch of the object — it is the nearest point of a 4×4 lattice inside the
    cell that is, so a cell that is mostly shared object is never dropped for its centre alone.
    """
    centres = cell_centres(x.warp.size, stride)
    frame_y, ok = _send(x, y, centres)
    retry = ~ok if usable is None else ~ok & usable
    if retry.any():
        ticks = (np.arange(4) + 0.5) * stride / 4 - stride / 2
        offsets = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
        for offset in offsets[np.argsort(np.linalg.norm(offsets, axis=1), kind="stable")]:
            cells = np.nonzero(retry)[0]
            if not len(cells):
                break
            moved, valid = _send(x, y, centres[cells] + offset)
            frame_y[cells[valid]] = moved[valid]
            ok[cells[valid]] = True
            retry[cells[valid]] = False
    return frame_y, ok


def ground_truth(a: ImageGeometry, b: ImageGeometry, stride: int = 16) -> GroundTruth:
    size = a.warp.size
    t = size // stride
    full_a, full_b = matchable_mask(a, b), matchable_mask(b, a)
    cover_a = cv2.resize(full_a.astype(np.float32), (t, t), interpolation=cv2.INTER_AREA).ravel()
    cover_b = cv2.resize(full_b.astype(np.float32), (t, t), interpolation=cv2.INTER_AREA).ravel()
    to_b, keep_a = token_flow(a, b, stride, usable=cover_a > 0)
    to_a, keep_b = token_flow(b, a, stride, usable=cover_b > 0)
    keep_a &= cover_a > 0
    keep_b &= cover_b > 0
    return GroundTruth(
        full_a=full_a,
        full_b=full_b,
        mask_a=np.where(keep_a, cover_a, 0).reshape(t, t).astype(np.float32),
        mask_b=np.where(keep_b, cover_b, 0).reshape(t, t).astype(np.float32),
        flow_ab=_normalised(to_b, keep_a, size).reshape(t, t, 2),
        flow_ba=_normalised(to_a, keep_b, size).reshape(t, t, 2),
    )


def _normalised(points: np.ndarray, keep: np.ndarray, size: int) -> np.ndarray:
    flow = np.clip((points + 0.5) / size, 0.0, 1.0)
    return np.where(keep[:, None], flow, 0.0).astype(np.float32)
