"""Placements and the thin-plate-spline frame warp."""

from __future__ import annotations

import numpy as np

from segswap.synth import geometry


def _box_in_canvas(placement, w=100, h=60, margin=0):
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)
    return geometry.apply_affine(placement.matrix(((w - 1) / 2, (h - 1) / 2), margin), corners)


def test_placements_follow_the_authors_ranges():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = geometry.sample_placement(rng, (100.0, 60.0), 480, edge_cut_prob=0.2)
        assert 0.7 <= p.aspect <= 1.0 and abs(p.rotation) <= 15
        box = _box_in_canvas(p)
        extent = max(np.ptp(box[:, 0]), np.ptp(box[:, 1]))
        if p.edge_cut is None and extent < 470:
            assert box.min() >= -0.5 - 1e-6 and box.max() <= 479.5 + 1e-6  # whole object in the frame
        if p.edge_cut == "left":
            assert box[:, 0].min() < -0.5
        if p.edge_cut == "bottom":
            assert box[:, 1].max() > 479.5


def test_matrix_rotates_counter_clockwise_on_screen():
    p = geometry.Placement(0, 1.0, 1.0, 0, 90.0, (50.0, 50.0), None)
    right_of_centre = geometry.apply_affine(p.matrix((0.0, 0.0), 0), np.array([[10.0, 0.0]]))
    assert np.allclose(right_of_centre, [[50.0, 40.0]])  # moved up: screen y points down


def test_tps_inverse_and_dense_map_agree():
    rng = np.random.default_rng(2)
    for grid in geometry.TPS_GRIDS:
        limit = geometry.TPS_MOVE / grid
        warp = geometry.FrameWarp.thin_plate(160, 26, grid, rng.uniform(-limit, limit, (grid * grid, 2)))
        pixels = np.stack(np.meshgrid(np.arange(160), np.arange(160)), -1).reshape(-1, 2).astype(float)
        assert np.abs(warp.dense().reshape(-1, 2) - warp.to_canvas(pixels)).max() < 1e-3
        points = rng.uniform(0, 159, (500, 2))
        back, found = warp.from_canvas(warp.to_canvas(points))
        assert found.all() and np.abs(back - points).max() < 1e-3


def test_identity_warp_is_a_shift():
    warp = geometry.FrameWarp.identity(64, 10)
    assert warp.dense() is None
    assert np.allclose(warp.to_canvas(np.array([[0.0, 5.0]])), [[10.0, 15.0]])
    back, found = warp.from_canvas(np.array([[10.0, 15.0]]))
    assert found.all() and np.allclose(back, [[0.0, 5.0]])


def test_folding_warps_are_detected():
    calm = geometry.FrameWarp.thin_plate(160, 20, 4, np.zeros((16, 2)))
    assert not calm.folds()
    swap = np.zeros((16, 2))
    swap[5], swap[6] = (0.4, 0.0), (-0.4, 0.0)  # two neighbours cross over
    assert geometry.FrameWarp.thin_plate(160, 20, 4, swap).folds()
