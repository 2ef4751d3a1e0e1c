"""`segswap verify`: the CLI around SCOTT and around the pair score. The weights here are random (these tests check the command's
behaviour, not accuracy; the trained weights' numbers are in docs/results.md)."""

import json
from pathlib import Path

import pytest
import torch

import segswap
from segswap.errors import SegswapError
from segswap.models.scott import ScottMatcher
from segswap.models.weights import save_weights
from segswap.shipped import SEARCH_SCALES
from segswap.verify.same_object import STATISTICS, load_pair_score_verifier, load_verifier

DATA = Path(segswap.__file__).parent / "data"
BOX, SCENE = DATA / "box.png", DATA / "box_in_scene.png"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = ScottMatcher(dim=16, stages=2, matcher_dim=8, pool=4, alpha=0.3)
    path = tmp_path_factory.mktemp("scott") / "scott.safetensors"
    save_weights(path, model, backbone="efficientnet-lite2", size=160, info={"validation": {"val_threshold": 0.5}})
    return path


def test_verify_prints_a_verdict_and_writes_json(weights, tmp_path, run_cli):
    r = run_cli("verify", str(BOX), str(SCENE), "--by", "scott", "--weights", str(weights), "--json", str(tmp_path / "v.json"))
    assert r.returncode == 0, r.stderr
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert isinstance(verdict["match"], bool) and 0.0 <= verdict["probability"] <= 1.0
    assert verdict["threshold"] == 0.5 and verdict["match"] == (verdict["probability"] >= 0.5)
    assert r.stdout.startswith(f"match: {'yes' if verdict['match'] else 'no'}")


def test_verify_gives_the_same_answer_for_a_pair_and_its_swap(weights):
    verifier = load_verifier(weights)
    forward, backward = verifier.verify(BOX, SCENE), verifier.verify(SCENE, BOX)
    assert forward["match"] == backward["match"]
    assert forward["probability"] == pytest.approx(backward["probability"], abs=1e-6)
    assert forward["mask_a_area"] == pytest.approx(backward["mask_b_area"])


def test_threshold_overrides_the_calibrated_one(weights):
    probability = load_verifier(weights).verify(BOX, SCENE)["probability"]
    assert load_verifier(weights, threshold=min(probability + 1e-3, 0.999)).verify(BOX, SCENE)["match"] is False
    assert load_verifier(weights, threshold=max(probability - 1e-3, 1e-3)).verify(BOX, SCENE)["match"] is True


@pytest.mark.parametrize("args,message", [
    (["--threshold", "1.5"], "strictly between 0 and 1"),
    (["--size", "100"], "multiple of 16"),
])
def test_bad_arguments_are_one_line_errors(weights, args, message, run_cli):
    r = run_cli("verify", str(BOX), str(SCENE), "--by", "scott", "--weights", str(weights), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_pair_model_weights_are_refused(tmp_path):
    from segswap.models.transformer import SegSwapTransformer

    path = tmp_path / "pair.safetensors"
    save_weights(path, SegSwapTransformer(dim=32, heads=2, ffn_dim=32, layers="I"), backbone="efficientnet-lite2", size=160)
    with pytest.raises(SegswapError, match="needs SCOTT weights"):
        load_verifier(path)


def test_an_unreadable_image_is_a_one_line_error(weights, tmp_path, run_cli):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    r = run_cli("verify", str(bad), str(SCENE), "--by", "scott", "--weights", str(weights))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_threshold_is_read_from_the_calibration_file(weights, monkeypatch):
    """verify's threshold is what `segswap eval calibrate-verify` wrote for these weights (by SHA-256 and
    size), not a number in the code; weights without a record fall back to their training's."""
    from segswap.models.weights import weights_digest

    record = {"weights_sha256": weights_digest(weights), "size": 160, "threshold": 0.8123, "precision": 0.95,
              "recall": 0.3, "average_precision": 0.7, "target_precision": 0.95}
    verifier = load_verifier(weights, calibrations=[record])
    assert verifier.threshold == 0.8123 and verifier.threshold_source == "calibrate-verify"
    assert verifier.verify(BOX, SCENE)["operating_point"]["precision"] == 0.95
    monkeypatch.setattr("segswap.verify.same_object.verify_calibrations", lambda: [{**record, "threshold": 0.6}])
    assert load_verifier(weights).threshold == 0.6  # the package's file, read when loading
    assert load_verifier(weights, calibrations=[{**record, "size": 320}]).threshold_source == "training"
    other = load_verifier(weights, calibrations=[{**record, "weights_sha256": "0" * 64}])
    assert other.threshold == 0.5 and other.threshold_source == "training"


@pytest.fixture(scope="module")
def transformer_weights(tmp_path_factory):
    from segswap.models.transformer import SegSwapTransformer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("segswap") / "segswap.safetensors"
    save_weights(path, SegSwapTransformer(dim=32, heads=2, ffn_dim=32, layers="I"), backbone="efficientnet-lite2", size=160)
    return path


def _pair_score_record(path, threshold):
    from segswap.models.weights import weights_digest

    return {"statistic": STATISTICS["pair-score"], "weights_sha256": weights_digest(path), "size": 160,
            "scales": list(SEARCH_SCALES), "threshold": threshold, "precision": 0.96, "recall": 0.25,
            "average_precision": 0.75, "target_precision": 0.95}


def test_the_pair_score_threshold_is_read_from_the_calibration_file(transformer_weights, monkeypatch):
    verifier = load_pair_score_verifier(transformer_weights, calibrations=[_pair_score_record(transformer_weights, 0.0321)])
    assert verifier.threshold == 0.0321 and verifier.threshold_source == "calibrate-verify"
    assert verifier.operating_point["recall"] == 0.25
    monkeypatch.setattr("segswap.verify.same_object.verify_calibrations",
                        lambda: [_pair_score_record(transformer_weights, 0.04)])
    assert load_pair_score_verifier(transformer_weights).threshold == 0.04  # the package's file, read when loading
    # a record for other weights, another size, other views or SCOTT's statistic does not apply
    record = _pair_score_record(transformer_weights, 0.0321)
    for other in ({"weights_sha256": "0" * 64}, {"size": 320}, {"scales": [1.0]}, {"statistic": STATISTICS["scott"]}):
        with pytest.raises(SegswapError, match="no calibrated pair-score threshold"):
            load_pair_score_verifier(transformer_weights, calibrations=[{**record, **other}])


def test_the_pair_score_verdict_is_its_score_against_the_threshold(transformer_weights):
    verifier = load_pair_score_verifier(transformer_weights, threshold=0.5)
    verdict = verifier.verify(BOX, SCENE)
    assert verdict["by"] == "pair-score" and 0.0 <= verdict["score"] <= 1.0 and verdict["scale"] in SEARCH_SCALES
    score = verdict["score"]
    if score > 1e-3:
        assert load_pair_score_verifier(transformer_weights, threshold=score - 1e-4).verify(BOX, SCENE)["match"] is True
    assert load_pair_score_verifier(transformer_weights, threshold=min(score + 1e-4, 0.999)).verify(BOX, SCENE)["match"] is False


def test_verify_by_pair_score_is_the_default_command(transformer_weights, weights, tmp_path, run_cli):
    r = run_cli("verify", str(BOX), str(SCENE), "--weights", str(transformer_weights), "--threshold", "0.05",
                "--json", str(tmp_path / "v.json"))
    assert r.returncode == 0, r.stderr
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["by"] == "pair-score" and verdict["match"] == (verdict["score"] >= 0.05)
    assert r.stdout.startswith(f"match: {'yes' if verdict['match'] else 'no'}  pair score")
    # SCOTT weights for the pair score, an unknown --by: one line, exit 2, nothing written
    for bad in (["--weights", str(weights)], ["--by", "coin"]):
        r = run_cli("verify", str(BOX), str(SCENE), "--threshold", "0.05", "--json", str(tmp_path / "w.json"), *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "w.json").exists()


def test_calibrating_the_pair_score_records_its_views(transformer_weights, tmp_path, fake_synth):
    from segswap.evaluation.calibration import calibrate_verify

    folder = fake_synth(tmp_path / "pairs", n=6, size=160)
    verifier = load_pair_score_verifier(transformer_weights, threshold=0.5)
    # half the pairs are positives, so precision 0.4 is reached at the lowest score whatever the weights
    record = calibrate_verify([folder], verifier, target_precision=0.4, show_progress=False)
    assert record["precision"] >= 0.4 and record["model"] == "segswap" and record["statistic"] == STATISTICS["pair-score"]
    assert record["scales"] == list(SEARCH_SCALES) and record["positives"] == 6
    loaded = load_pair_score_verifier(transformer_weights, calibrations=[record])
    assert loaded.threshold == pytest.approx(record["threshold"])
