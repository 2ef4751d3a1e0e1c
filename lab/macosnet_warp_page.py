"""An HTML page of MSRC pairs aligned by MaCoSNet's warp, to judge its correspondences by eye.

Per pair (consecutive images of a group, the groups in turn, until ``--pairs``): a and b with their
cycle-consistent masks (as `--val-coseg` scores them; no objectness prior), a warped into b's frame by T_BA, the warped a blended
with b, and a 5×5 grid of coloured points on a drawn where T_AB sends them in b. With ``--png DIR``,
each row is also written as one PNG.

It also measures the warp: **label transfer** (the semantic-alignment measure of Proposal Flow and
Rocco et al. on Caltech-101), a's ground-truth mask carried into b's frame by T_BA and scored (J)
against b's ground truth, and b's into a by T_AB, against the identity warp's (the mask resized).

    .venv/bin/python lab/macosnet_warp_page.py ../shared/data/eval/msrc_coseg --out warp_page.html [--pairs 20] [--png DIR]

Used in lab/results.md (MaCoSNet).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

import segswap
from segswap.evaluation.coseg import read_coseg_benchmark, read_truth
from segswap.evaluation.metrics import OBJECT, image_scores
from segswap.io import load_image
from segswap.models.macosnet import transform_points
from segswap.verify.align import warp_into_b
from segswap.viz.html import Row, Tile, thumbnail, write_report

GRID = 5


def grid_points(result: dict, size_a, size_b) -> tuple[np.ndarray, np.ndarray]:
    """A GRID×GRID lattice in a (pixels) and where T_AB sends it in b (pixels)."""
    steps = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID * 2 - 1
    points = np.stack(np.meshgrid(steps, steps), -1).reshape(1, -1, 2)
    params = {key: torch.as_tensor(result[key])[None] for key in ("affine_ab", "tps_ab")}
    with torch.no_grad():
        landed = transform_points(params, "ab", torch.from_numpy(points))[0].numpy()
    to_pixels = lambda p, size: (p + 1) / 2 * np.array(size, np.float32)  # noqa: E731
    return to_pixels(points[0], size_a), to_pixels(landed, size_b)


def draw_points(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    out = image.copy()
    radius = max(3, round(max(image.shape[:2]) / 80))
    for k, (x, y) in enumerate(points):
        hue = np.uint8([[[round(180 * k / len(points)), 255, 255]]])
        colour = tuple(int(c) for c in cv2.cvtColor(hue, cv2.COLOR_HSV2RGB)[0, 0])
        cv2.circle(out, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)
        cv2.circle(out, (round(float(x)), round(float(y))), radius, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def carried(truth: np.ndarray, size: tuple[int, int], warp: dict | None) -> np.ndarray:
    """The object of ``truth`` (255/0/128) carried into a frame of ``size`` (width, height) by ``warp``
    (a result's affine_ba/tps_ba), or resized when ``warp`` is None (the identity warp)."""
    obj = np.where(truth == OBJECT, 255, 0).astype(np.uint8)
    moved = cv2.resize(obj, size, interpolation=cv2.INTER_LINEAR) if warp is None else warp_into_b(obj, size, warp)
    return moved > 127


def label_transfer(result: dict, truth_a: np.ndarray, truth_b: np.ndarray) -> tuple[float, float]:
    """(J of the warp, J of the identity): a's truth carried into b by T_BA, b's into a by T_AB, the
    mean of both directions."""
    size_a, size_b = (truth_a.shape[1], truth_a.shape[0]), (truth_b.shape[1], truth_b.shape[0])
    backwards = {"affine_ba": result["affine_ab"], "tps_ba": result["tps_ab"]}  # T_AB reads a's frame from b's
    warp = [image_scores(carried(truth_a, size_b, result), truth_b)[1], image_scores(carried(truth_b, size_a, backwards), truth_a)[1]]
    same = [image_scores(carried(truth_a, size_b, None), truth_b)[1], image_scores(carried(truth_b, size_a, None), truth_a)[1]]
    return float(np.mean(warp)), float(np.mean(same))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None)
    args = parser.parse_args()
    matcher = segswap.load("macosnet", args.weights)
    groups = read_coseg_benchmark(args.root)
    chosen, k = [], 0
    while len(chosen) < args.pairs and k < max(len(items) for items in groups.values()) - 1:
        chosen += [(g, items[k], items[k + 1]) for g, items in groups.items() if k + 1 < len(items)]
        k += 1
    rows = []
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
    transfer = []
    for n, (group, item_a, item_b) in enumerate(chosen[:args.pairs]):
        path_a, path_b = item_a.image, item_b.image
        rgb_a, rgb_b = load_image(path_a), load_image(path_b)
        result = matcher.match(rgb_a, rgb_b, scales=(1.0,), prior=False)
        size_a, size_b = (rgb_a.shape[1], rgb_a.shape[0]), (rgb_b.shape[1], rgb_b.shape[0])
        warped = warp_into_b(rgb_a, size_b, result)
        on_a, on_b = grid_points(result, size_a, size_b)
        tiles = [Tile(rgb_a, f"a: {path_a.name}", mask=result["mask_a"]),
                 Tile(rgb_b, f"b: {path_b.name}", mask=result["mask_b"]),
                 Tile(warped, "a warped into b's frame"),
                 Tile(cv2.addWeighted(warped, 0.5, rgb_b, 0.5, 0), "warped a + b"),
                 Tile(draw_points(rgb_a, on_a), "a 5×5 grid on a"),
                 Tile(draw_points(rgb_b, on_b), "... where T_AB sends it in b")]
        affine = np.asarray(result["affine_ab"])
        transfer.append(label_transfer(result, read_truth(item_a.truth), read_truth(item_b.truth)))
        rows.append(Row(f"{group}: {path_a.name} → {path_b.name}", tiles,
                        [f"affine_ab {np.round(affine, 2).tolist()}, score {result['score']:.2f}",
                         f"label transfer J {transfer[-1][0]:.3f} (identity warp {transfer[-1][1]:.3f})"]))
        if args.png:
            strip = np.hstack([thumbnail(t) for t in tiles])
            cv2.imwrite(str(args.png / f"{n:02d}_{group}.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    warp_j, identity_j = np.mean(transfer, axis=0)
    better = float(np.mean([w > i for w, i in transfer]))
    summary = (f"label transfer J {warp_j:.3f} (identity warp {identity_j:.3f}); the warp better on "
               f"{better:.0%} of pairs")
    write_report(args.out, "MaCoSNet's warp on MSRC pairs", rows,
                 [f"{len(rows)} pairs of {args.root}; weights {matcher.weights}, {matcher.size} px, one view, no prior",
                  summary])
    print(f"{len(rows)} pairs → {args.out}; {summary}")


if __name__ == "__main__":
    main()
