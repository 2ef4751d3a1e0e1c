import numpy as np
import pytest

from segswap.errors import SegswapError
from segswap.evaluation.metrics import coseg_scores, image_scores

# 4 object pixels, 2 ignored, 10 background.
GT = np.array([[255, 255, 0, 0],
               [255, 255, 0, 0],
               [128, 128, 0, 0],
               [0, 0, 0, 0]], np.uint8)
# 3 object pixels found, 1 missed, 1 false alarm; the two predicted ignored pixels count for nothing.
PRED = np.array([[1, 0, 0, 0],
                 [1, 1, 1, 0],
                 [1, 1, 0, 0],
                 [0, 0, 0, 0]], np.uint8) * 255


def test_one_image_by_hand():
    p, j = image_scores(PRED, GT)
    assert p == pytest.approx(12 / 14)  # 14 scored pixels, 2 wrong
    assert j == pytest.approx(3 / 5)  # TP 3 / (TP 3 + FN 1 + FP 1)


def test_mask_encodings_agree():
    as_bool = PRED > 0
    assert image_scores(as_bool, GT) == image_scores(PRED, GT) == image_scores(as_bool.astype(np.float32) * 0.7, GT)
    assert image_scores(as_bool.astype(np.uint8), GT) == image_scores(PRED, GT)
    assert image_scores(np.full(GT.shape, 0.49, np.float32), GT) == image_scores(np.zeros(GT.shape, bool), GT)


def test_empty_ground_truth_counts_for_p_but_not_j():
    empty = np.array([[0, 0], [128, 0]], np.uint8)
    pred = np.array([[1, 0], [1, 0]], bool)
    assert image_scores(pred, empty) == (pytest.approx(2 / 3), None)
    scores = coseg_scores([PRED, pred], [GT, empty])
    assert scores["n"] == 2
    assert scores["P"] == pytest.approx((12 / 14 + 2 / 3) / 2)
    assert scores["J"] == pytest.approx(3 / 5)


def test_all_ignored_and_missed_object():
    assert image_scores(np.ones((2, 2), bool), np.full((2, 2), 128, np.uint8)) == (None, None)
    assert image_scores(np.zeros((2, 2), bool), np.array([[255, 0], [0, 0]], np.uint8)) == (pytest.approx(3 / 4), 0.0)
    assert coseg_scores([np.ones((2, 2), bool)], [np.zeros((2, 2), np.uint8)])["J"] is None


def test_mismatches_are_refused():
    with pytest.raises(SegswapError, match="ground truth is 4×4"):
        image_scores(np.zeros((3, 4), bool), GT)
    with pytest.raises(SegswapError, match="1 predicted masks for 2"):
        coseg_scores([PRED], [GT, GT])
