"""Style kinds: each changes the look, keeps the size, and is the same for the same random draws."""

from __future__ import annotations

import numpy as np
import pytest

from segswap.synth import style


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:96, 0:128]
    base = np.stack([x * 2, y * 2, 255 - x - y], -1).astype(np.float64)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("kind", list(style.KINDS))
def test_style_kind(kind, photo):
    painting = np.zeros((60, 70, 3), np.uint8)
    painting[..., 2] = 200
    painting[::4] = (250, 220, 40)
    out, params = style.apply_style(photo, kind, np.random.default_rng(0), [painting])
    again, params_again = style.apply_style(photo, kind, np.random.default_rng(0), [painting])
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out, again) and params == params_again
    assert params["kind"] == kind and 0.6 <= params["strength"] <= 1.0
    assert np.abs(out.astype(int) - photo).mean() > 5


def test_kinds_without_style_images():
    assert set(style.available_kinds(False)) == set(style.KINDS) - style.NEEDS_STYLE_IMAGES
    assert len(style.available_kinds(False)) >= 4
