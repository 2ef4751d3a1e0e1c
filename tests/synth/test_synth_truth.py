"""Ground truth is right: points map where the pixels really went, masks are the pasted objects."""

from __future__ import annotations

import cv2
import numpy as np

from segswap.synth.truth import cell_centres


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear colour of ``image`` at frame points (N, 2)."""
    map_x = points[:, 0].astype(np.float32)[None]
    map_y = points[:, 1].astype(np.float32)[None]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR)[0].astype(np.float64)


def test_flow_lands_on_the_same_source_point(kit, texture_yolo, photos):
    """Coordinate-coded texture, plain paste, no style, TPS on: decode where each cell came from."""
    make = kit.maker(texture_yolo, photos, blend="copy", style=False, tps=1.0, edge_cut=0.3)
    size, stride, checked = 160, 16, 0
    for index in range(6):
        pair, _ = make.make(index)
        t = pair.truth
        inside = t.mask_a.ravel() >= 0.999  # whole cell on the object: colours are pure texture
        centres = cell_centres(size, stride)[inside]
        target = t.flow_ab.reshape(-1, 2)[inside] * size - 0.5
        # Only targets with object all around them in b (bilinear sampling reads 2×2 pixels).
        ij = np.floor(target).astype(int)
        solid = t.full_b[ij[:, 1], ij[:, 0]] & t.full_b[ij[:, 1] + 1, ij[:, 0] + 1]
        src_a = kit.decode_texture(_sample(pair.a, centres[solid]))
        src_b = kit.decode_texture(_sample(pair.b, target[solid]))
        scale_b = max(o["placement"]["scale"] for o in pair.meta["b"]["objects"])  # source px → b px
        error_cells = np.abs(src_a - src_b).max(axis=1) * scale_b / stride
        assert error_cells.max() <= 0.5, (index, error_cells.max())
        checked += len(error_cells)
    assert checked >= 30


def test_flows_land_on_the_shared_object_and_masks_keep_every_object_cell(kit, texture_yolo, photos, paintings):
    styles = sorted(str(p) for p in paintings.iterdir())
    make = kit.maker(texture_yolo, photos, styles=styles)
    for index in range(6):
        pair, _ = make.make(index)
        t = pair.truth
        n = t.mask_a.shape[0]
        size = pair.a.shape[0]
        for mask_x, full_x, full_y, flow_xy in ((t.mask_a, t.full_a, t.full_b, t.flow_ab),
                                                (t.mask_b, t.full_b, t.full_a, t.flow_ba)):
            ys, xs = np.nonzero(mask_x > 0)
            assert len(ys) >= 9
            # Each kept cell's centre lands on the object in y: on a pixel of y's mask, or within 2 px of
            # one (points on the object's outline, where rounding decides).
            px = np.clip(np.rint(flow_xy[ys, xs] * size - 0.5).astype(int), 0, size - 1)
            distance = cv2.distanceTransform((~full_y).astype(np.uint8), cv2.DIST_L2, 3)
            assert distance[px[:, 1], px[:, 0]].max() <= 2.0
            # No cell that is mostly shared object is dropped, whatever the scale between the images
            # (a cell-level round trip used to drop about half of them).
            cover = full_x.reshape(n, size // n, n, size // n).mean(axis=(1, 3))
            solid = cover >= 0.9
            assert (mask_x[solid] >= 0.5).mean() >= 0.95, (index, (mask_x[solid] >= 0.5).mean())
            # Flows are in [0, 1] and zero wherever the mask is zero.
            assert flow_xy.min() >= 0 and flow_xy.max() <= 1
            assert not flow_xy[mask_x == 0].any()
        assert pair.meta["cells"]["a"] >= 9 and pair.meta["cells"]["b"] >= 9


def test_masks_match_the_pasted_region(kit, tmp_path, photos):
    """A magenta object on green-blue backgrounds: the mask is where the magenta went."""
    magenta = np.zeros((kit.SOURCE_SIDE, kit.SOURCE_SIDE, 3), np.uint8)
    magenta[:] = (255, 0, 255)
    folder = kit.make_yolo(tmp_path / "magenta", {"m": magenta},
                       {"m": kit.yolo_line([(0.2, 0.2), (0.8, 0.25), (0.7, 0.8), (0.25, 0.7)])})
    make = kit.maker(folder, photos, blend="copy", style=False, tps=0.5)
    for index in range(5):
        pair, _ = make.make(index)
        for image, mask in ((pair.a, pair.truth.full_a), (pair.b, pair.truth.full_b)):
            pink = (image[..., 0] > 150) & (image[..., 1] < 100) & (image[..., 2] > 150)
            assert mask.sum() > 0
            precision = (pink & mask).sum() / mask.sum()
            recall = (pink & mask).sum() / pink.sum()
            assert precision > 0.97, (index, precision)
            # Lower: pixels of the object that the other image cannot show are not in the mask.
            assert recall > 0.6, (index, recall)
        # The token mask agrees with the full-resolution one (fraction of each cell covered).
        n = pair.truth.mask_a.shape[0]
        cover = pair.truth.full_a.reshape(n, 16, n, 16).mean(axis=(1, 3))
        kept = pair.truth.mask_a > 0
        assert np.allclose(pair.truth.mask_a[kept], cover[kept], atol=1e-6)


def test_negative_pairs_share_nothing(kit, texture_yolo, photos):
    make = kit.maker(texture_yolo, photos, negatives=1.0, style=False)
    pair, _ = make.make(0)
    assert pair.kind == "negative"
    assert pair.meta["a"]["source"] != pair.meta["b"]["source"]
    for array in pair.truth.arrays().values():
        assert not array.any()
    assert not pair.truth.full_a.any() and not pair.truth.full_b.any()
