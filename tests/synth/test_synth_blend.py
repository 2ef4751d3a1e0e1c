"""Blending: seamlessClone keeps the object in place, and a blended pair differs from a plain paste."""

from __future__ import annotations

import cv2
import numpy as np

from segswap.synth import compose


def test_seamless_clone_keeps_the_patch_in_place():
    """Cloning a patch onto itself changes nothing, for odd and even boxes: no off-by-one placement,
    whether solved at full or (big objects) half size."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(20, 260, 2))  # both sides of FULL_RES_POISSON
        patch = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 1.0)
        region = np.zeros((h, w), np.uint8)
        cv2.ellipse(region, (w // 2, h // 2), (w // 2 - int(rng.integers(2, 6)), h // 2 - int(rng.integers(2, 6))),
                    0, 0, 360, 255, -1)
        before = region.copy()
        canvas = patch.copy()
        compose.blend(canvas, compose.WarpedObject(0, 0, patch, region, region > 0), "normal")
        assert np.abs(canvas.astype(int) - patch).max() <= 2
        one_off = np.roll(patch, 1, axis=1)
        assert np.abs(one_off.astype(int) - patch)[region > 0].mean() > 10  # a 1-px error would show
        assert np.array_equal(region, before)  # OpenCV 5 writes into the mask; we pass it a copy


def test_blended_pairs_differ_from_plain_paste(kit, texture_yolo, photos):
    """Same seed, same geometry and ground truth; only the pixels of the pasted objects change."""
    for mode in ("normal", "mixed"):
        blended, _ = kit.maker(texture_yolo, photos, blend=mode, style=False).make(3)
        pasted, _ = kit.maker(texture_yolo, photos, blend="copy", style=False).make(3)
        for key in ("objects", "background", "tps"):
            geometry_blended = [{k: v for k, v in o.items() if k != "blend"} for o in blended.meta["b"]["objects"]] \
                if key == "objects" else blended.meta["b"][key]
            geometry_pasted = [{k: v for k, v in o.items() if k != "blend"} for o in pasted.meta["b"]["objects"]] \
                if key == "objects" else pasted.meta["b"][key]
            assert geometry_blended == geometry_pasted
        for name in ("mask_a", "flow_ab"):
            assert np.array_equal(blended.truth.arrays()[name], pasted.truth.arrays()[name])
        for image_blend, image_copy, mask in ((blended.a, pasted.a, pasted.truth.full_a), (blended.b, pasted.b, pasted.truth.full_b)):
            diff = np.abs(image_blend.astype(int) - image_copy.astype(int)).mean(axis=2)
            assert diff[mask].mean() > 5, mode  # the object's colours moved towards the background
            ys, xs = np.nonzero(mask)
            far = np.ones_like(mask)
            far[max(0, ys.min() - 4) : ys.max() + 5, max(0, xs.min() - 4) : xs.max() + 5] = False
            assert diff[far].mean() < 0.5 * diff[mask].mean()
