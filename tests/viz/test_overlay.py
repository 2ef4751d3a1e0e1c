import numpy as np

from segswap.viz.overlay import highlight, pair_overlay


def test_a_mask_on_a_red_subject_stays_visible():
    """Item 13 of issue 21: the red-orange tint alone vanished on a red subject; the outline shows."""
    red = np.zeros((120, 160, 3), np.uint8)
    red[...] = (250, 60, 30)
    mask = np.zeros((120, 160), np.float32)
    mask[30:90, 40:120] = 1
    out = highlight(red, mask)
    border = out[30, 40:120].astype(int)
    assert np.abs(border - red[30, 40:120]).sum(axis=1).min() > 200  # every border pixel stands out
    canvas = pair_overlay(red, red, mask, mask, np.zeros((0, 5)), height=120)
    assert (canvas == 255).all(axis=2).any() and (canvas == 0).all(axis=2).any()  # white and black outline
