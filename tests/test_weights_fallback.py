"""The one weights policy of the command line (segswap.cli.common.load_matcher): without shipped SegSwap
weights and with neither --model nor --weights, a pair-model command runs the training-free
correlation model and says so; SCOTT, which has no training-free stand-in, is an error."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import segswap
from segswap.cli import app

DATA = Path(segswap.__file__).parent / "data"
NOTE = "no trained SegSwap weights are installed yet; using the training-free 'correlation' model"


@pytest.fixture
def no_shipped_weights(monkeypatch):
    monkeypatch.setattr("segswap.pair.shipped_weights_path", lambda name: None)
    monkeypatch.setattr("segswap.shipped.shipped_weights_path", lambda name: None)


def test_pair_falls_back_to_the_training_free_model_with_a_note(tmp_path, no_shipped_weights):
    r = CliRunner().invoke(app, ["pair", str(DATA / "box.png"), str(DATA / "box_in_scene.png"), "--out", str(tmp_path),
                                 "--scales", "1"])
    assert r.exit_code == 0, r.output
    assert NOTE in r.stderr
    assert json.loads((tmp_path / "result.json").read_text())["model"] == "correlation"


def test_an_eval_command_falls_back_the_same_way(tmp_path, fake_synth, no_shipped_weights):
    pairs = fake_synth(tmp_path / "pairs", n=4)
    r = CliRunner().invoke(app, ["eval", "synthetic", str(pairs), "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert NOTE in r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["model"] == "correlation"


def test_a_chosen_model_is_never_replaced(tmp_path, no_shipped_weights):
    r = CliRunner().invoke(app, ["pair", str(DATA / "box.png"), str(DATA / "box_in_scene.png"), "--out", str(tmp_path),
                                 "--scales", "1", "--model", "segswap"])
    assert r.exit_code != 0 and "no trained weights for model 'segswap'" in str(r.exception)
    assert NOTE not in r.stderr


def test_verify_without_its_weights_is_an_error(monkeypatch):
    monkeypatch.setattr("segswap.verify.same_object.shipped_weights_path", lambda name: None)
    monkeypatch.setattr("segswap.verify.same_object.shipped_verify_weights_path", lambda: None)
    r = CliRunner().invoke(app, ["verify", str(DATA / "box.png"), str(DATA / "box_in_scene.png"), "--by", "scott"])
    assert r.exit_code != 0 and "no SCOTT weights are installed" in str(r.exception)
    r = CliRunner().invoke(app, ["verify", str(DATA / "box.png"), str(DATA / "box_in_scene.png")])
    assert r.exit_code != 0 and "no SegSwap transformer weights for verify are installed" in str(r.exception)
