"""The flow window centred on the 3×3 block of most match probability instead of the best cell.

Runs `segswap eval synthetic` and `segswap eval corr` (the same arguments) with
`segswap.models.correlation`'s window replaced by the mass-centred one, so the numbers compare with
those commands' own output. Tried on 2026-12-02 and not kept (docs/training.md).

    .venv/bin/python scripts/flow_window_mass.py eval synthetic W/test_coco320 W/test_unsup320
    .venv/bin/python scripts/flow_window_mass.py eval corr ../shared/data/eval/oxford_graf --size 640
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F

from segswap.models import correlation


def mass_centred_window(logits: torch.Tensor, grid: tuple[int, int], radius: int | None) -> torch.Tensor:
    if radius is None:
        return logits
    h, w = grid
    b, n, m = logits.shape
    probability = logits.softmax(dim=2).view(b * n, 1, h, w)
    mass = F.avg_pool2d(probability, 2 * radius + 1, stride=1, padding=radius).view(b, n, m)
    best = mass.argmax(dim=2)
    ys = torch.arange(h).repeat_interleave(w)
    xs = torch.arange(w).repeat(h)
    near = ((ys - (best // w)[..., None]).abs() <= radius) & ((xs - (best % w)[..., None]).abs() <= radius)
    return logits.masked_fill(~near, -math.inf)


if __name__ == "__main__":
    correlation._window = mass_centred_window
    from segswap.cli import app

    sys.argv = ["segswap", *sys.argv[1:]]
    app()
