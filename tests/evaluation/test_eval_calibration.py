import json

import pytest

import segswap
from segswap.collection.search import calibrated_threshold
from segswap.errors import SegswapError
from segswap.evaluation.calibration import add_calibration, calibrate_search
from segswap.shipped import search_calibrations


def test_the_shipped_calibration_is_for_the_shipped_weights():
    # new weights shipped without running `segswap eval calibrate-search` again would fail here
    matcher = segswap.load()
    threshold = calibrated_threshold(matcher)
    assert threshold is not None and 0 < threshold < 1
    (record,) = [r for r in search_calibrations() if r["weights_sha256"] == matcher.weights_sha256]
    assert record["precision"] >= record["target_precision"]
    # another inference option changes the scores: the calibration no longer applies
    assert calibrated_threshold(segswap.load(eval_flow_radius=None)) is None
    assert calibrated_threshold(segswap.load("correlation")) is None


def test_calibration_reaches_its_precision_and_is_stored_by_weights(tmp_path, fake_synth):
    folder = fake_synth(tmp_path / "pairs", n=12, size=96)
    matcher = segswap.load(size=96)
    record = calibrate_search([folder], matcher, target_precision=0.5, show_progress=False)
    assert record["precision"] >= 0.5 and 0 <= record["recall"] <= 1
    assert record["positives"] == 12 and record["negatives"] > 0
    assert record["weights_sha256"] == matcher.weights_sha256
    out = tmp_path / "calibration.json"
    add_calibration(out, {**record, "threshold": 0.9})
    add_calibration(out, record)  # the same weights and options: replaces, never lists twice
    stored = json.loads(out.read_text())
    assert len(stored) == 1 and stored[0]["threshold"] == record["threshold"]
    assert calibrated_threshold(matcher, stored) == pytest.approx(record["threshold"])
    with pytest.raises(SegswapError, match="no weights file"):
        calibrate_search([folder], segswap.load("correlation", size=96), show_progress=False)


def test_calibrate_search_command(tmp_path, fake_synth, run_cli):
    folder = fake_synth(tmp_path / "pairs", n=8, size=96)
    out = tmp_path / "calibration.json"
    r = run_cli("eval", "calibrate-search", folder, "--out", out, "--precision", "0.5")
    assert r.returncode == 0, r.stderr
    assert "matched fraction" in r.stdout and json.loads(out.read_text())[0]["target_precision"] == 0.5
    for bad in (["--precision", "1.5"], ["--model", "nope"]):
        r = run_cli("eval", "calibrate-search", folder, "--out", tmp_path / "c2.json", *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "c2.json").exists()
