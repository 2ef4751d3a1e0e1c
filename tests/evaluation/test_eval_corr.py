
import cv2
import numpy as np
import pytest
from PIL import Image

import segswap
from segswap.errors import SegswapError
from segswap.evaluation import baselines
from segswap.evaluation.corr import accuracy, evaluate_correspondences, read_sequence, transfer_errors

# Rotation by ≈8°, scale 0.9, a shift and a little perspective: a known img1 → img2 mapping.
KNOWN_H = np.array([[0.89, -0.125, 30.0],
                    [0.125, 0.89, 10.0],
                    [1e-4, -5e-5, 1.0]])


def _textured(h=240, w=320, seed=0):
    """Random filled shapes of many grey levels and colours: plenty of SIFT keypoints."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 127, np.uint8)
    for _ in range(120):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), int(rng.integers(3, 20)), colour, -1)
        else:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(4, 30)), y + int(rng.integers(4, 30))), colour, -1)
    return image


@pytest.fixture
def sequence(tmp_path):
    image = _textured()
    Image.fromarray(image).save(tmp_path / "img1.png")
    Image.fromarray(cv2.warpPerspective(image, KNOWN_H, (320, 240), borderValue=(127, 127, 127))).save(tmp_path / "img2.png")
    np.savetxt(tmp_path / "H1to2p", KNOWN_H)
    return tmp_path


def test_reads_the_sequence_and_refuses_a_broken_one(sequence, tmp_path):
    first, targets = read_sequence(sequence)
    assert first.name == "img1.png" and [name for name, _, _ in targets] == ["img2"]
    np.testing.assert_allclose(targets[0][2], KNOWN_H)
    (sequence / "H1to3p").write_text("1 2 3\n")
    with pytest.raises(SegswapError, match="H1to3p has no img3"):
        read_sequence(sequence)
    (sequence / "H1to3p").unlink()
    (sequence / "H1to2p").write_text("1 2 3\n")
    with pytest.raises(SegswapError, match="H1to2p: a homography is 3×3"):
        read_sequence(sequence)
    with pytest.raises(SegswapError, match="no such folder"):
        read_sequence(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SegswapError, match="expected img1"):
        read_sequence(empty)


def test_transfer_errors_and_thresholds():
    points = np.array([[10.0, 20.0], [100.0, 50.0], [200.0, 150.0]])
    exact = cv2.perspectiveTransform(points.reshape(-1, 1, 2), KNOWN_H).reshape(-1, 2)
    np.testing.assert_allclose(transfer_errors(points, exact, KNOWN_H), 0, atol=1e-9)
    shifted = exact + [[2.0, 0.0], [0.0, 4.0], [6.0, 8.0]]  # errors 2, 4, 10 px
    row = accuracy(transfer_errors(points, shifted, KNOWN_H))
    assert row == {"n": 3, "within": {1: 0.0, 3: pytest.approx(1 / 3), 5: pytest.approx(2 / 3), 10: 1.0}}
    assert accuracy(np.zeros(0)) == {"n": 0, "within": {1: None, 3: None, 5: None, 10: None}}


def test_sift_matches_recover_the_known_homography_and_a_wrong_one_is_caught():
    image = _textured()
    warped = cv2.warpPerspective(image, KNOWN_H, (320, 240), borderValue=(127, 127, 127))
    points_a, points_b = baselines.ratio_matches(baselines.sift_features(image), baselines.sift_features(warped))
    inliers = baselines.ransac_inliers(points_a, points_b)
    assert inliers.sum() >= 30
    fitted, _ = cv2.findHomography(points_a[inliers], points_b[inliers], 0)
    corners = np.array([[0, 0], [319, 0], [319, 239], [0, 239]], np.float64)
    assert transfer_errors(corners, cv2.perspectiveTransform(corners.reshape(-1, 1, 2), fitted).reshape(-1, 2),
                           KNOWN_H).max() < 1.5
    assert accuracy(transfer_errors(points_a[inliers], points_b[inliers], KNOWN_H))["within"][3] > 0.95
    wrong = KNOWN_H @ np.array([[1, 0, 8.0], [0, 1, 0], [0, 0, 1]])
    assert accuracy(transfer_errors(points_a[inliers], points_b[inliers], wrong))["within"][3] < 0.05


def test_evaluation_reports_the_model_and_both_sift_baselines(sequence):
    matcher = segswap.load("correlation", size=160)
    result = evaluate_correspondences(sequence, matcher, show_progress=False)
    assert result["methods"] == ["correlation", "sift-ratio", "sift-ransac"]
    (row,) = result["pairs"]
    assert row["pair"] == "img1→img2"
    assert row["sift-ransac"]["within"][3] > 0.95 and row["sift-ratio"]["n"] >= row["sift-ransac"]["n"]
    assert row["correlation"]["n"] > 0  # the matcher keeps correspondences inside its own mask


def test_cli_prints_one_row_per_method(sequence, run_cli):
    r = run_cli("eval", "corr", sequence, "--model", "correlation", "--size", "160")
    assert r.returncode == 0, r.stderr
    assert [line.split("|")[2].strip() for line in r.stdout.splitlines()[2:]] == ["correlation", "sift-ratio", "sift-ransac"]
