"""A co-segmentation method is one registration (segswap.collection.methods): `cosegment`, `eval coseg` and
the commands' argument checks all take it from there. The guide's toy example, run for real."""

import numpy as np
import pytest
from PIL import Image

from segswap.collection.cosegment import cosegment_folder
from segswap.collection.methods import COSEG_METHODS, CosegMethod, check_method, register_coseg_method
from segswap.errors import SegswapError
from segswap.evaluation.coseg import evaluate_coseg, methods
from segswap.io import load_image


def red_masks(paths, potentials, priors, show_progress, skipped):
    """A toy method that looks at each image alone: its red pixels."""
    masks = []
    for path in paths:
        rgb = load_image(path).astype(int)
        masks.append(((rgb[..., 0] > 150) & (rgb[..., 1] < 100)).astype(np.uint8) * 255)
    return masks


def confident_cells(paths, potentials, priors, show_progress, skipped):
    """A toy method on the pair model's potentials: the cells above 0.5, at each image's size."""
    import cv2

    masks = []
    for path, potential in zip(paths, potentials):
        h, w = load_image(path).shape[:2]
        masks.append((cv2.resize(potential, (w, h), interpolation=cv2.INTER_NEAREST) > 0.5).astype(np.uint8) * 255)
    return masks


@pytest.fixture
def toy_methods():
    register_coseg_method("red", CosegMethod("the red pixels of each image", red_masks, pairs=False))
    register_coseg_method("confident-cells", CosegMethod("pair-model cells above 0.5", confident_cells))
    yield
    for name in ("red", "confident-cells"):
        COSEG_METHODS.pop(name, None)


@pytest.fixture
def red_boxes(tmp_path):
    """A co-segmentation benchmark: one group of three images, a red box on green noise in each."""
    rng = np.random.default_rng(3)
    for k in range(3):
        image = np.zeros((96, 128, 3), np.uint8)
        image[..., 1] = 140 + rng.integers(0, 60, (96, 128))
        y, x = 10 + 10 * k, 20 + 15 * k
        image[y:y + 40, x:x + 50] = (220, 30, 30)
        truth = np.zeros((96, 128), np.uint8)
        truth[y:y + 40, x:x + 50] = 255
        for folder, array in (("images", image), ("groundtruth", truth)):
            (tmp_path / folder / "boxes").mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(tmp_path / folder / "boxes" / f"im{k}.png")
    return tmp_path


def test_a_registered_method_runs_in_cosegment_and_eval_coseg(toy_methods, red_boxes, matcher):
    assert check_method("red").pairs is False and "red" in methods() and "confident-cells" in methods()
    summary = cosegment_folder(red_boxes / "images", red_boxes / "masks", matcher, method="red", show_progress=False)
    assert summary.images == 3
    mask = np.asarray(Image.open(red_boxes / "masks" / "boxes" / "im0.png"))
    assert mask[10:50, 20:70].min() == 255 and mask.sum() == 255 * 40 * 50
    scores = evaluate_coseg(red_boxes, "red", show_progress=False)
    assert scores["mean"]["J"] == pytest.approx(1.0)
    # a method on the pair model's potentials receives one per image, on its token grid
    paired = evaluate_coseg(red_boxes, "confident-cells", show_progress=False)
    assert paired["method"] == "confident-cells" and 0 <= paired["mean"]["J"] <= 1


def test_a_name_is_registered_once(toy_methods):
    with pytest.raises(SegswapError, match="needs a new name"):
        register_coseg_method("fusion", CosegMethod("again", red_masks))
    with pytest.raises(SegswapError, match="unknown co-segmentation method 'blue'; choose from fusion, segswap"):
        check_method("blue")
