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


def test_an_extreme_strip_is_drawn_within_the_pixel_budget():
    """Item 1 of issue 36: each image was drawn at the overlay's height whatever its shape, so a 20000×20
    strip made a 480660×480 overlay (and one of 60000×16 took `segswap pair` to 22 GB)."""
    from segswap.viz import overlay

    strip = np.zeros((16, 2000, 3), np.uint8)
    strip[:, ::40] = 255
    photo = np.full((300, 400, 3), 90, np.uint8)
    centres = np.array([[1000, 8, 200, 150, 1.0]], np.float32)  # the strip's centre matches the photo's
    canvas = pair_overlay(strip, photo, np.ones((16, 2000), np.float32), np.zeros((300, 400), np.float32), centres,
                          height=480, gap=8)
    widest = overlay.MAX_ASPECT * 480
    assert canvas.shape == (480, widest + 8 + 640, 3)  # the photo at full height, the strip as wide as allowed
    strip_rows = np.flatnonzero((canvas[:, :widest] != 255).any(axis=(1, 2)))
    assert len(strip_rows) == round(16 * widest / 2000)  # its aspect kept, centred in the height
    assert abs(strip_rows.mean() - 240) <= 1
    assert (canvas[236:245, widest + 1:widest + 7] != 255).any()  # the line between the two centres crosses the gap
