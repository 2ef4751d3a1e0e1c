"""``segswap align`` and ``segswap eval align``: a planted homography is recovered from two images, the
command writes its files, bad input gives one line and exit status 2."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from segswap.errors import SegswapError
from segswap.evaluation.homography import corner_error, evaluate_alignment
from segswap.evaluation.tables import alignment_table
from segswap.verify.align import Aligned, align, scale_factors, write_alignment
from segswap.verify.ransac import CoarseAlignment

# Rotation by ≈6°, scale ≈0.92, a shift and some perspective: img1 → img2.
PLANTED = np.array([[0.91, -0.1, 28.0], [0.09, 0.92, 12.0], [2e-4, 1e-4, 1.0]])
SIZE = 320  # feature size of the tests: 20×15 cells on 320×240 images


def painting(seed: int = 0, height: int = 240, width: int = 320) -> np.ndarray:
    """Overlapping coloured polygons and strokes over a colour gradient: texture everywhere in the frame."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    image = np.broadcast_to(ramp * rng.uniform(0.3, 1, 3), (height, width, 3)).astype(np.uint8).copy()
    for _ in range(90):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.6:
            polygon = rng.integers(-20, 20, (int(rng.integers(3, 6)), 2)) + rng.integers(0, (width, height))
            cv2.fillPoly(image, [polygon.astype(np.int32)], colour)
        else:
            start, end = rng.integers(0, (width, height)), rng.integers(0, (width, height))
            cv2.line(image, tuple(int(v) for v in start), tuple(int(v) for v in end), colour, int(rng.integers(1, 4)))
    return image


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    image = painting()
    Image.fromarray(image).save(root / "img1.png")
    Image.fromarray(cv2.warpPerspective(image, PLANTED, (320, 240), borderValue=(90, 90, 90))).save(root / "img2.png")
    np.savetxt(root / "H1to2p", PLANTED)
    return root


def test_align_recovers_a_planted_homography(pair):
    identity_error = corner_error(np.eye(3), PLANTED, (320, 240))
    for scales in (1, 3):
        aligned = align(pair / "img1.png", pair / "img2.png", size=SIZE, scales=scales)
        assert aligned.coarse.inliers >= 40
        assert corner_error(aligned.coarse.homography, PLANTED, (320, 240)) < min(8.0, identity_error / 4)
        assert len(aligned.scales) == scales and aligned.size == SIZE
        assert aligned.warped().shape == (240, 320, 3)


def test_scale_factors_follow_ransac_flow():
    assert scale_factors(1) == [1.0]
    factors = scale_factors(7)
    assert factors[0] == pytest.approx(1.2) and factors[3] == pytest.approx(1.0) and factors[-1] == pytest.approx(1 / 1.2)
    with pytest.raises(SegswapError, match="--scales"):
        scale_factors(0)


def test_align_command_writes_the_homography_and_check_images(pair, tmp_path):
    from typer.testing import CliRunner

    from segswap.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["align", str(pair / "img1.png"), str(pair / "img2.png"), "--out", str(out),
                                      "--size", str(SIZE), "--scales", "1"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "result.json").read_text())
    assert np.array(written["homography"]).shape == (3, 3) and written["inliers"] > 0
    assert corner_error(np.array(written["homography"]), PLANTED, (320, 240)) < 8.0
    assert written["shared_only"] is False and written["model"] is None and written["scales_b"] == [1.0]
    assert Image.open(out / "warped.png").size == (320, 240)
    assert Image.open(out / "blend.png").size == (320, 240)
    assert Image.open(out / "side_by_side.png").size == (640, 240)

    shared = tmp_path / "shared"
    result = CliRunner().invoke(app, ["align", str(pair / "img1.png"), str(pair / "img2.png"), "--out", str(shared),
                                      "--size", str(SIZE), "--scales", "1", "--shared-only", "--model", "correlation"])
    assert result.exit_code == 0, result.output
    written = json.loads((shared / "result.json").read_text())
    assert written["shared_only"] is True and written["model"] == "correlation"
    assert written["matches"] <= json.loads((out / "result.json").read_text())["matches"]


@pytest.mark.parametrize("arguments, message", [
    (["missing.png", "{b}"], "no such file"),
    (["{text}", "{b}"], "not an image file"),
])
def test_bad_images_give_one_line_and_exit_2(pair, tmp_path, arguments, message, run_cli):
    (tmp_path / "notes.png").write_text("not an image\n")
    paths = {"b": pair / "img2.png", "text": tmp_path / "notes.png"}
    result = run_cli("align", *[a.format(**paths) for a in arguments], "--out", tmp_path / "out", timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, message", [
    (["--scales", "0"], "--scales must be at least 1"),
    (["--size", "100"], "--size must be a multiple of 16"),
    (["--model", "correlation"], "add --shared-only"),
])
def test_bad_options_are_user_errors(pair, tmp_path, options, message):
    from typer.testing import CliRunner

    from segswap.cli import app

    result = CliRunner().invoke(app, ["align", str(pair / "img1.png"), str(pair / "img2.png"), "--out", str(tmp_path), *options])
    assert isinstance(result.exception, SegswapError) and message in str(result.exception)  # main() prints it, exits 2


def test_no_homography_is_an_error_and_writes_nothing(tmp_path):
    image = painting(1, 64, 64)
    aligned = Aligned(image, image, CoarseAlignment(None, 3, 0, np.zeros((0, 2)), np.zeros((0, 2))), "efficientnet-lite2",
                      SIZE, [1.0], shared_only=True)
    with pytest.raises(SegswapError, match="cannot align: 3 mutual matches inside the shared masks"):
        write_alignment(tmp_path / "out", aligned, {})
    assert not (tmp_path / "out").exists()


def test_the_evaluation_compares_align_and_sift_by_corner_error(pair):
    assert corner_error(PLANTED, PLANTED, (320, 240)) == pytest.approx(0.0, abs=1e-9)
    assert corner_error(None, PLANTED, (320, 240)) is None
    result = evaluate_alignment(pair, size=SIZE, scale_counts=(1,), keypoints=("xfeat",), show_progress=False)
    assert result["methods"] == ["align-1scale", "xfeat", "align-xfeat", "sift-ransac"]
    row = result["pairs"][0]
    assert row["pair"] == "img1→img2"
    assert row["align-1scale"]["corner_error"] < 8.0 and row["sift-ransac"]["corner_error"] < 2.0
    assert row["xfeat"]["corner_error"] < 2.0 and row["align-xfeat"]["corner_error"] < 2.0
    assert row["align-xfeat"]["stage"] == "keypoints:xfeat"
    table = alignment_table(result)
    assert table.splitlines()[0] == "| pair | align-1scale | xfeat | align-xfeat | sift-ransac |" and "img1→img2" in table


def test_keypoints_align_where_they_agree_and_features_where_they_do_not(pair, tmp_path, run_cli):
    from segswap.keypoints import get_matcher, is_installed

    if not is_installed("xfeat"):
        pytest.skip("keypoint wheels not installed")
    matcher = get_matcher("xfeat")
    aligned = align(pair / "img1.png", pair / "img2.png", size=SIZE, keypoints=matcher)
    assert aligned.stage == "keypoints:xfeat" and aligned.coarse.inliers >= 100
    assert corner_error(aligned.coarse.homography, PLANTED, (320, 240)) < 1.5
    # the inliers are the pairs' own points: a's mapped by the homography land on b's
    mapped = cv2.perspectiveTransform(aligned.coarse.points_a.reshape(-1, 1, 2), PLANTED).reshape(-1, 2)
    assert np.median(np.linalg.norm(mapped - aligned.coarse.points_b, axis=1)) < 1.5
    # a blank image gives no keypoint support: the backbone-feature stage takes over
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert align(pair / "img1.png", blank, size=SIZE, keypoints=matcher).stage == "features"
    done = run_cli("align", pair / "img1.png", pair / "img2.png", "--out", tmp_path / "out", "--keypoints", "xfeat")
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written["stage"] == "keypoints:xfeat" and "xfeat keypoints" in done.stdout
    assert corner_error(np.array(written["homography"]), PLANTED, (320, 240)) < 1.5


def test_align_by_a_warp_model_writes_its_warp(pair, tmp_path):
    from typer.testing import CliRunner

    from segswap.cli import app
    from segswap.shipped import shipped_weights_path

    if shipped_weights_path("macosnet") is None:
        pytest.skip("no shipped MaCoSNet weights")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["align", str(pair / "img1.png"), str(pair / "img2.png"), "--out", str(out),
                                      "--model", "macosnet"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "result.json").read_text())
    assert written["model"] == "macosnet" and np.array(written["affine_ab"]).shape == (2, 3)
    assert np.array(written["tps_ba"]).shape == (9, 2)
    assert Image.open(out / "warped.png").size == (320, 240)
    assert Image.open(out / "side_by_side.png").size == (640, 240)
    # --scales is the homography's: refused with a warp model
    result = CliRunner().invoke(app, ["align", str(pair / "img1.png"), str(pair / "img2.png"), "--out", str(tmp_path / "o2"),
                                      "--model", "macosnet", "--scales", "1"])
    assert isinstance(result.exception, SegswapError) and "--scales" in str(result.exception)
