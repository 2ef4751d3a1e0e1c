"""How many object cells a cell-level round trip keeps: the check `segswap synth` format 1 applied.

For each pair of a format-2 synth folder, the cells of a with token mask ≥ 0.5 are sent to b by
``flow_ab`` and back by b's own cell flow ``flow_ba``; format 1 kept a cell only if it came back into
itself. Prints the mean number of object cells, how many would pass, and the IoU of the two masks —
what a model marking exactly the shared object scored against format-1 ground truth.

    .venv/bin/python lab/truth_round_trip.py W/coco320 [-n 500]

Used in docs/synth.md and lab/training.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from segswap.synth.reader import positive_pairs, read_truth


def round_trip_cells(mask_a: np.ndarray, flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """Boolean T×T: object cells of a whose point, sent to b's cell and back through that cell's flow,
    lands in the cell it started from."""
    t = mask_a.shape[0]
    ys, xs = np.nonzero(mask_a >= 0.5)
    cell_b = np.clip(np.floor(flow_ab[ys, xs] * t).astype(int), 0, t - 1)
    back = np.clip(np.floor(flow_ba[cell_b[:, 1], cell_b[:, 0]] * t).astype(int), 0, t - 1)
    kept = np.zeros_like(mask_a, dtype=bool)
    kept[ys, xs] = (back[:, 0] == xs) & (back[:, 1] == ys)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path, help="a segswap synth folder (format 2)")
    parser.add_argument("-n", type=int, default=500, help="pairs to read")
    args = parser.parse_args()
    cells, kept, ious = [], [], []
    for entry in positive_pairs(args.pairs)[: args.n]:
        gt = read_truth(args.pairs / entry["id"])
        for mask, there, back in ((gt["mask_a"], gt["flow_ab"], gt["flow_ba"]), (gt["mask_b"], gt["flow_ba"], gt["flow_ab"])):
            on = mask >= 0.5
            passed = round_trip_cells(mask, there, back)
            cells.append(on.sum())
            kept.append(passed.sum())
            ious.append(passed.sum() / max(1, on.sum()))
    print(f"{len(cells) // 2} pairs of {args.pairs}: {np.mean(cells):.1f} object cells per image, {np.mean(kept):.1f} pass "
          f"the cell round trip; IoU of the two masks {np.mean(ious):.3f} (median {np.median(ious):.3f})")


if __name__ == "__main__":
    main()
