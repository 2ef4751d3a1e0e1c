"""The contact sheet ``segswap synth --preview`` writes: the first pairs of a folder, read back from disk,
masks tinted, a sample of the true cell-to-cell matches drawn, and under each image its style and
condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..viz.sheet import caption_tile, contact_sheet, pair_tile, save_sheet
from . import reader


def true_matches(truth: dict, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> np.ndarray:
    """N×4 ``[xa, ya, xb, yb]`` in pixels: each object cell of a (token mask ≥ 0.5) from its centre to
    where ``flow_ab`` sends it in b."""
    token_mask, flow = truth["mask_a"], truth["flow_ab"]
    cell = shape_a[0] / token_mask.shape[0]
    ys, xs = np.nonzero(token_mask >= 0.5)
    return np.stack([(xs + 0.5) * cell, (ys + 0.5) * cell,
                     flow[ys, xs, 0] * shape_b[1], flow[ys, xs, 1] * shape_b[0]], axis=1)


def write_preview(pairs_dir: Path, path: Path, count: int = 12) -> Path:
    """A contact sheet of the first ``count`` pairs listed in ``pairs_dir``'s manifest, as JPEG or PNG."""
    tiles = []
    for entry in reader.listed_pairs(pairs_dir)[:count]:
        pair_dir = Path(pairs_dir) / entry["id"]
        image_a, image_b = reader.read_images(pair_dir)
        mask_a, mask_b = reader.read_masks(pair_dir)
        tile = pair_tile(image_a, image_b, mask_a, mask_b, true_matches(reader.read_truth(pair_dir), image_a.shape, image_b.shape))
        tiles.append(caption_tile(tile, [describe_image(entry["id"], reader.read_meta(pair_dir), side) for side in "ab"]))
    return save_sheet(contact_sheet(tiles), Path(path))


def describe_image(pair_id: str, meta: dict, side: str) -> str:
    """What was done to image ``side`` of a pair: its style kind and condition, e.g. "000003 b: oil + night"."""
    looks = [meta.get(side, {}).get("style") and meta[side]["style"]["kind"]]
    condition = meta.get("condition")
    looks.append(condition["name"] if condition and condition["image"] == side else None)
    looks = [look for look in looks if look]
    return f"{pair_id} {side}: {' + '.join(looks) if looks else 'photo'}"
