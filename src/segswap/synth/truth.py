"""Exact ground truth of a synthetic pair, from the transforms that made it.

Each image keeps its canvas label map (which object shows at each canvas pixel, after occlusion),
its frame warp and, per object, the affine map from the object's source pixels to the canvas. A point
of image x maps to image y by: frame → canvas (warp), source ← canvas (inverse affine of x), source →
canvas of y (affine of y), canvas → frame (inverse warp of y). A point counts only if the same object
is visible at both ends.

Outputs, with ``S`` the image side and ``T = S / stride`` the token grid:

* full-resolution masks (S×S, bool): pixels whose object point is visible in the other image;
* token masks (T×T, float32): the fraction of each cell covered by that full-resolution mask, kept
  only for cells that pass the cycle check, 0 elsewhere;
* token flows (T×T×2, float32): for each cell centre, where the same point is in the other image,
  (x, y) normalised to [0, 1] (pixel edges at 0 and 1); 0 where the token mask is 0.

Cycle check (the authors' "cycle-consistent" ground truth): cell i of a counts only if its point maps
into b at a cell j whose own point maps back into cell i, and both ends show the object. The relation is symmetric, so a cell that counts in a always lands on a cell
that counts in b and vice versa.
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


def token_flow(x: ImageGeometry, y: ImageGeometry, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame coordinates in y of x's cell centres, and which are valid (object visible at both ends)."""
    size = x.warp.size
    canvas_y, valid = transfer(x, y, x.warp.to_canvas(cell_centres(size, stride)))
    frame_y, found = y.warp.from_canvas(canvas_y)
    inside = (frame_y >= -0.5).all(axis=1) & (frame_y < size - 0.5).all(axis=1)
    return frame_y, valid & found & inside


def ground_truth(a: ImageGeometry, b: ImageGeometry, stride: int = 16) -> GroundTruth:
    size = a.warp.size
    t = size // stride
    full_a, full_b = matchable_mask(a, b), matchable_mask(b, a)
    cover_a = cv2.resize(full_a.astype(np.float32), (t, t), interpolation=cv2.INTER_AREA).ravel()
    cover_b = cv2.resize(full_b.astype(np.float32), (t, t), interpolation=cv2.INTER_AREA).ravel()
    to_b, ok_ab = token_flow(a, b, stride)
    to_a, ok_ba = token_flow(b, a, stride)
    ok_ab &= cover_a > 0
    ok_ba &= cover_b > 0
    keep_a = _round_trip(to_b, ok_ab, to_a, ok_ba, size, stride)
    keep_b = _round_trip(to_a, ok_ba, to_b, ok_ab, size, stride)
    return GroundTruth(
        full_a=full_a,
        full_b=full_b,
        mask_a=np.where(keep_a, cover_a, 0).reshape(t, t).astype(np.float32),
        mask_b=np.where(keep_b, cover_b, 0).reshape(t, t).astype(np.float32),
        flow_ab=_normalised(to_b, keep_a, size).reshape(t, t, 2),
        flow_ba=_normalised(to_a, keep_b, size).reshape(t, t, 2),
    )


def _round_trip(there: np.ndarray, ok_there: np.ndarray, back: np.ndarray, ok_back: np.ndarray,
                size: int, stride: int) -> np.ndarray:
    """Cells whose point, sent to the other image and back through that image's cell, returns home."""
    t = size // stride
    j = _cell_index(there, size, stride)
    returned = _cell_index(back[j], size, stride) == np.arange(t * t)
    return ok_there & ok_back[j] & returned


def _cell_index(points: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Row-major index of the cell holding each frame point (cell i spans pixels i*stride .. +stride-1)."""
    t = size // stride
    cell = np.clip(np.floor((points + 0.5) / stride).astype(np.int64), 0, t - 1)
    return cell[:, 1] * t + cell[:, 0]


def _normalised(points: np.ndarray, keep: np.ndarray, size: int) -> np.ndarray:
    flow = np.clip((points + 0.5) / size, 0.0, 1.0)
    return np.where(keep[:, None], flow, 0.0).astype(np.float32)
