"""`segswap verify`: the CLI around SCOTT and around the pair score. The weights here are random (these tests check the command's
behaviour, not accuracy; the trained weights' numbers are in lab/results.md)."""

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


def test_the_fused_operating_point_maximises_recall_at_the_precision():
    from segswap.evaluation.calibration import fused_operating_point

    # positives: 4 found by keypoints only, 3 by the pair score only, 3 by neither; negatives: one with
    # 6 inliers, one with pair score 0.05: "inliers >= 9 or score >= 0.07" calls 7 positives and no negative
    # (7, 8 and 9 inliers call the same pairs: the larger threshold is kept)
    positives = {"inliers": [30, 20, 12, 9, 0, 1, 2, 0, 0, 0], "pair_score": [0, 0, 0, 0.01, 0.2, 0.1, 0.07, 0, 0, 0.01]}
    negatives = {"inliers": [6, 0, 1, 0], "pair_score": [0, 0.05, 0, 0.01]}
    point = fused_operating_point(positives, negatives, target_precision=0.99)
    assert (point["inlier_threshold"], point["pair_score_threshold"]) == (9, 0.07)
    assert point["precision"] == 1.0 and point["recall"] == 0.7 and point["threshold"] == 1.0
    loose = fused_operating_point(positives, negatives, target_precision=0.85)
    assert loose["recall"] >= point["recall"] and loose["precision"] >= 0.85
    with pytest.raises(SegswapError, match="no thresholds reach precision"):
        fused_operating_point({"inliers": [0], "pair_score": [0.0]}, {"inliers": [5], "pair_score": [0.5]}, 0.95)


def _needs_keypoints():
    from segswap.keypoints import is_installed
    from segswap.shipped import KEYPOINTS

    if not is_installed(KEYPOINTS):
        pytest.skip("keypoint wheels not installed")


def _fused_record(path, n, s, **extra):
    from segswap.keypoints import get_matcher
    from segswap.models.weights import weights_digest
    from segswap.shipped import KEYPOINTS
    from segswap.verify.same_object import _conf_record

    return {"statistic": STATISTICS["fused"], "weights_sha256": weights_digest(path), "size": 160,
            "scales": list(SEARCH_SCALES), "keypoints": KEYPOINTS, "keypoint_conf": _conf_record(get_matcher(KEYPOINTS)),
            "inlier_threshold": n, "pair_score_threshold": s, "threshold": 1.0, "precision": 0.95, "recall": 0.3,
            "average_precision": 0.75, "target_precision": 0.95, **extra}


def test_the_fused_thresholds_are_read_from_the_calibration_file(transformer_weights):
    from segswap.verify.same_object import load_fused_verifier

    _needs_keypoints()
    verifier = load_fused_verifier(transformer_weights, calibrations=[_fused_record(transformer_weights, 13, 0.024)])
    assert (verifier.inlier_threshold, verifier.pair_threshold, verifier.threshold) == (13, 0.024, 1.0)
    assert verifier.threshold_source == "calibrate-verify" and verifier.operating_point["recall"] == 0.3
    record = _fused_record(transformer_weights, 13, 0.024)
    for other in ({"weights_sha256": "0" * 64}, {"size": 320}, {"keypoints": "xfeat"},
                  {"keypoint_conf": {**record["keypoint_conf"], "max_keypoints": 4096}}, {"statistic": STATISTICS["pair-score"]}):
        with pytest.raises(SegswapError, match="no calibrated fused thresholds"):
            load_fused_verifier(transformer_weights, calibrations=[{**record, **other}])


def test_the_fused_verdict_names_the_evidence_that_decided_it(transformer_weights, run_cli, tmp_path):
    from segswap.verify.same_object import load_fused_verifier

    _needs_keypoints()
    # the demo's box is in the scene: its keypoints agree on a homography; the toy transformer's score is weak
    by_keypoints = load_fused_verifier(transformer_weights, pair_threshold=0.99, inlier_threshold=12).verify(BOX, SCENE)
    assert by_keypoints["match"] and by_keypoints["decided_by"] == ["keypoints"]
    assert by_keypoints["evidence"]["keypoints"]["inliers"] >= 12 and not by_keypoints["evidence"]["pair_score"]["passed"]
    assert by_keypoints["score"] == pytest.approx(by_keypoints["evidence"]["keypoints"]["inliers"] / 12)
    score = by_keypoints["evidence"]["pair_score"]["score"]
    neither = load_fused_verifier(transformer_weights, pair_threshold=min(0.99, score + 0.01), inlier_threshold=10_000)
    assert neither.verify(BOX, SCENE)["match"] is False
    r = run_cli("verify", BOX, SCENE, "--by", "keypoints", "--threshold", "12", "--json", tmp_path / "k.json")
    assert r.returncode == 0, r.stderr
    verdict = json.loads((tmp_path / "k.json").read_text())
    assert verdict["by"] == "keypoints" and verdict["match"] and verdict["inliers"] >= 12
    assert r.stdout.startswith("match: yes") and "homography inliers of xfeat-lighterglue" in r.stdout


def test_calibrating_the_fused_verdict_records_both_thresholds(transformer_weights, tmp_path, fake_synth):
    from segswap.evaluation.calibration import calibrate_verify
    from segswap.verify.same_object import load_fused_verifier

    _needs_keypoints()
    folder = fake_synth(tmp_path / "pairs", n=6, size=160)
    verifier = load_fused_verifier(transformer_weights, pair_threshold=0.5, inlier_threshold=1)
    record = calibrate_verify([folder], verifier, target_precision=0.4, show_progress=False)
    assert record["by"] == "fused" and record["statistic"] == STATISTICS["fused"] and record["threshold"] == 1.0
    assert record["keypoints"] == verifier.keypoints.name and record["inlier_threshold"] >= 1
    loaded = load_fused_verifier(transformer_weights, calibrations=[record])
    assert loaded.inlier_threshold == record["inlier_threshold"]
    assert loaded.pair_threshold == pytest.approx(record["pair_score_threshold"])


def test_the_shipped_calibration_decides_by_keypoints_and_fused_out_of_the_box():
    """`segswap verify --by keypoints|fused` work with the package alone: their records in the shipped
    verify_calibration.json match the shipped verify weights and the default matcher's settings."""
    from segswap.keypoints import is_installed
    from segswap.shipped import KEYPOINTS
    from segswap.verify.same_object import load_fused_verifier, load_keypoint_verifier

    if not is_installed(KEYPOINTS):
        pytest.skip("keypoint wheels not installed")
    keypoints = load_keypoint_verifier()
    fused = load_fused_verifier()
    assert keypoints.threshold_source == fused.threshold_source == "calibrate-verify"
    assert keypoints.threshold >= 1 and fused.inlier_threshold >= 1 and 0 < fused.pair_threshold < 1
    assert fused.operating_point["precision"] >= 0.95 and keypoints.operating_point["precision"] >= 0.95
