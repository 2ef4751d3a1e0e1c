"""Where things go: object placements (similarity + aspect) and the thin-plate-spline warp of a frame.

Coordinates are OpenCV pixel coordinates (pixel centres on integers). Each image is composed on a
*canvas* larger than the final frame by ``margin`` on every side, so that objects cut at an edge and
the TPS warp both look at real content instead of a padded border. A :class:`FrameWarp` maps final
frame pixels to canvas pixels; it is the identity shifted by the margin, or a TPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Object sizes: 10 levels of the longest side in [0.2, 1] of the frame, as the authors do.
SIZE_LEVELS = np.linspace(0.2, 1.0, 10)
ASPECT_RANGE = (0.7, 1.0)
ROTATION_DEG = 15.0
#: Fraction of the object pushed out of the frame when it is cut at an edge.
CUT_RANGE = (0.15, 0.4)
EDGE_SIDES = ("left", "right", "top", "bottom")
#: TPS: control grid sizes and the largest move of a control point, in units of 1/grid of the frame.
#: The authors move points by up to 0.5/grid on a [-1, 1] grid, i.e. 0.25/grid of the frame; twice
#: that folds the warp in 10-20 % of draws (measured), which would show some content twice.
TPS_GRIDS = (4, 6)
TPS_MOVE = 0.25
#: Smallest local area ratio a TPS may have; folding warps (ratio <= 0) are refused.
TPS_MIN_AREA_RATIO = 0.1
#: Spacing (px) of the lattice on which the TPS is evaluated; the dense map is its bilinear interpolant.
TPS_LATTICE = 8


def canvas_margin(size: int) -> int:
    """Margin wide enough for the largest TPS move (``0.25/4`` of the frame) and generous overshoot."""
    return size // 8


@dataclass(frozen=True)
class Placement:
    """How one object goes from its source image into one canvas."""

    size_level: int
    scale: float
    aspect: float
    aspect_axis: int  # 0: squeeze x, 1: squeeze y
    rotation: float  # degrees, counter-clockwise on screen
    centre: tuple[float, float]  # frame coordinates of the object's bbox centre
    edge_cut: str | None  # side of the frame the object is pushed through, if any

    def matrix(self, source_centre: tuple[float, float], margin: int) -> np.ndarray:
        """2×3 affine map from source-image pixels to canvas pixels."""
        sx = self.scale * (self.aspect if self.aspect_axis == 0 else 1.0)
        sy = self.scale * (self.aspect if self.aspect_axis == 1 else 1.0)
        t = np.deg2rad(self.rotation)
        # Screen y points down, so a counter-clockwise turn on screen is a negative angle in maths axes.
        rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
        linear = rot @ np.diag([sx, sy])
        cx, cy = source_centre
        offset = np.array([self.centre[0] + margin, self.centre[1] + margin]) - linear @ np.array([cx, cy])
        return np.hstack([linear, offset[:, None]])

    def as_dict(self) -> dict:
        return {
            "size_level": self.size_level,
            "scale": self.scale,
            "aspect": self.aspect,
            "aspect_axis": "x" if self.aspect_axis == 0 else "y",
            "rotation_deg": self.rotation,
            "centre": list(self.centre),
            "edge_cut": self.edge_cut,
        }


def sample_placement(rng: np.random.Generator, box_wh: tuple[float, float], size: int, edge_cut_prob: float) -> Placement:
    """Draw scale, aspect, rotation and position for an object whose bbox is ``box_wh`` px."""
    # Every draw happens whatever the branch, so one choice never shifts the random stream of the next.
    level = int(rng.integers(len(SIZE_LEVELS)))
    aspect = float(rng.uniform(*ASPECT_RANGE))
    axis = int(rng.integers(2))
    rotation = float(rng.uniform(-ROTATION_DEG, ROTATION_DEG))
    cut = bool(rng.random() < edge_cut_prob)
    side = EDGE_SIDES[int(rng.integers(4))]
    outside = float(rng.uniform(*CUT_RANGE))
    u, v = rng.random(2)

    w, h = box_wh
    scale = float(SIZE_LEVELS[level] * size / max(w, h))
    probe = Placement(level, scale, aspect, axis, rotation, (0.0, 0.0), None)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    moved = corners @ probe.matrix((0.0, 0.0), 0)[:, :2].T
    half_w, half_h = np.abs(moved).max(axis=0)

    cx = _inside(u, half_w, size)
    cy = _inside(v, half_h, size)
    if cut:
        if side == "left":
            cx = half_w - outside * 2 * half_w
        elif side == "right":
            cx = size - half_w + outside * 2 * half_w
        elif side == "top":
            cy = half_h - outside * 2 * half_h
        else:
            cy = size - half_h + outside * 2 * half_h
    return Placement(level, scale, aspect, axis, rotation, (float(cx), float(cy)), side if cut else None)


def _inside(u: float, half: float, size: int) -> float:
    """Centre position along one axis that keeps the object inside the frame (centred if too big)."""
    lo, hi = half - 0.5, size - 0.5 - half
    return (lo + u * (hi - lo)) if hi > lo else (size - 1) / 2


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    return np.stack([matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2], matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]], 1)


class FrameWarp:
    """Map from final-frame pixels to canvas pixels: identity + margin, or a thin-plate spline.

    The TPS is evaluated on a lattice every ``TPS_LATTICE`` px and interpolated bilinearly; that
    interpolant *is* the warp, used both to render the image (``dense``) and for the ground truth
    (``to_canvas`` at any point, ``from_canvas`` by Newton's method), so they agree exactly.
    """

    def __init__(self, size: int, margin: int, lattice: np.ndarray | None = None):
        self.size = size
        self.margin = margin
        self.lattice = lattice  # (L, L, 2) canvas coordinates at frame points 0, 8, 16, ...
        self._dense: np.ndarray | None = None

    @classmethod
    def identity(cls, size: int, margin: int) -> "FrameWarp":
        return cls(size, margin)

    @classmethod
    def thin_plate(cls, size: int, margin: int, grid: int, moves: np.ndarray) -> "FrameWarp":
        """TPS whose control points on a ``grid``×``grid`` lattice show content moved by ``moves``.

        ``moves`` (grid², 2) are in units of the frame size: the content at control point c appears
        at c + move in the warped frame, so the backward map sends c + move to c.
        """
        ticks = np.linspace(0.0, 1.0, grid)
        ctrl = np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)
        shown_at = ctrl + moves
        n_nodes = -(-(size - 1) // TPS_LATTICE) + 1
        nodes = np.arange(n_nodes) * TPS_LATTICE
        frame_pts = np.stack(np.meshgrid(nodes, nodes), axis=-1).reshape(-1, 2).astype(np.float64)
        norm = (frame_pts + 0.5) / size
        canvas_norm = _tps_fit_eval(shown_at, ctrl, norm)
        canvas = canvas_norm * size - 0.5 + margin
        canvas = np.clip(canvas, 0.0, size + 2 * margin - 1.0)  # never sample past the canvas
        return cls(size, margin, canvas.reshape(n_nodes, n_nodes, 2))

    def folds(self) -> bool:
        """Whether the warp squeezes some lattice cell to (almost) nothing or flips it."""
        if self.lattice is None:
            return False
        dx = np.diff(self.lattice, axis=1)[:-1]
        dy = np.diff(self.lattice, axis=0)[:, :-1]
        area = (dx[..., 0] * dy[..., 1] - dx[..., 1] * dy[..., 0]) / TPS_LATTICE**2
        return bool(area.min() <= TPS_MIN_AREA_RATIO)

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Canvas coordinates of frame points (N, 2)."""
        points = np.asarray(points, dtype=np.float64)
        if self.lattice is None:
            return points + self.margin
        return _bilinear(self.lattice, points / TPS_LATTICE)

    def from_canvas(self, points: np.ndarray, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
        """Frame coordinates of canvas points and whether each one was found (inverse converged)."""
        points = np.asarray(points, dtype=np.float64)
        if self.lattice is None:
            return points - self.margin, np.ones(len(points), dtype=bool)
        q = points - self.margin  # the warp is close to the shifted identity
        eps = 0.25
        for _ in range(iterations):
            f = self.to_canvas(q) - points
            if len(f) == 0 or np.abs(f).max() < 1e-6:
                break
            jx = (self.to_canvas(q + [eps, 0.0]) - self.to_canvas(q - [eps, 0.0])) / (2 * eps)
            jy = (self.to_canvas(q + [0.0, eps]) - self.to_canvas(q - [0.0, eps])) / (2 * eps)
            det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
            det = np.where(np.abs(det) < 1e-9, 1e-9, det)
            dx = (jy[:, 1] * f[:, 0] - jy[:, 0] * f[:, 1]) / det
            dy = (-jx[:, 1] * f[:, 0] + jx[:, 0] * f[:, 1]) / det
            q = q - np.stack([dx, dy], axis=1)
        found = np.linalg.norm(self.to_canvas(q) - points, axis=1) < 0.05
        return q, found

    def dense(self) -> np.ndarray | None:
        """(size, size, 2) float32 map for ``cv2.remap``, or None for the identity."""
        if self.lattice is None:
            return None
        if self._dense is None:
            # Bilinear interpolation of the lattice by cv2.remap is exact here: its weights are
            # multiples of 1/32 and the pixel-to-node ratio is 1/8.
            pos = np.arange(self.size, dtype=np.float32) / TPS_LATTICE
            map_x, map_y = np.meshgrid(pos, pos)
            self._dense = cv2.remap(self.lattice.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
        return self._dense

    def frame_outline(self) -> np.ndarray:
        """Canvas polygon (M, 2) of the frame's border: the canvas region the final image shows."""
        s = self.size - 1
        t = np.arange(0, s, 2, dtype=np.float64)
        border = np.concatenate([
            np.stack([t, np.zeros_like(t)], 1),
            np.stack([np.full_like(t, s), t], 1),
            np.stack([s - t, np.full_like(t, s)], 1),
            np.stack([np.zeros_like(t), s - t], 1),
        ])
        return self.to_canvas(border)


def _tps_fit_eval(src: np.ndarray, dst: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Fit the TPS sending ``src`` to ``dst`` (both (n, 2)) and evaluate it at ``points``."""
    n = len(src)
    k = _tps_kernel(src, src)
    p = np.hstack([np.ones((n, 1)), src])
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = k
    system[:n, n:] = p
    system[n:, :n] = p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = dst
    coef = np.linalg.solve(system, rhs)
    return _tps_kernel(points, src) @ coef[:n] + np.hstack([np.ones((len(points), 1)), points]) @ coef[n:]


def _tps_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d2 > 0, d2 * np.log(d2), 0.0)


def _bilinear(grid: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Sample an (n, n, C) grid at fractional (x, y) node positions, extrapolating linearly at edges."""
    n = grid.shape[0]
    x, y = pos[:, 0], pos[:, 1]
    x0 = np.clip(np.floor(x).astype(int), 0, n - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, n - 2)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
