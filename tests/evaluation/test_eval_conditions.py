"""`segswap eval conditions`: same command, same JSON; bad input refused before any work."""

import json
from pathlib import Path

import segswap
from segswap.evaluation.condition_benchmark import REFERENCE, evaluate_conditions
from segswap.evaluation.tables import conditions_table
from segswap.verify.same_object import load_same_object_verifier

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SEGMENTS, BACKGROUNDS = SHARED / "train" / "coco128_seg", SHARED / "train" / "photos"


def test_same_command_same_json(tmp_path):
    # verify's default verdict (the pair score over segswap pair's views); no calibration exists at 96 px
    matcher, verifier = segswap.load(size=96), load_same_object_verifier(size=96, threshold=0.02)
    runs = [evaluate_conditions([SEGMENTS], BACKGROUNDS, tmp_path / f"run{k}", matcher, verifier, n=4,
                                conditions=("night", "ink_wash"), workers=1, show_progress=False) for k in range(2)]
    assert json.dumps(runs[0], sort_keys=True) == json.dumps(runs[1], sort_keys=True)
    rows = runs[0]["conditions"]
    assert runs[0]["verifier"]["by"] == "pair-score" and runs[0]["verifier"]["weights"] == "segswap-verify.safetensors"
    assert list(rows) == [REFERENCE, "night", "ink_wash"] and rows[REFERENCE]["iou_drop"] == 0
    for row in rows.values():
        # at 96 px some draws have too few cells to be pairs; every condition keeps the same ones
        assert row["positives"] == rows[REFERENCE]["positives"] > 0 and row["negatives"] > 0
        assert 0 <= row["mask_iou"] <= 1 and 0 <= row["pair_score_ap"] <= 1 and 0 <= row["verify_ap"] <= 1
    assert "| night | light |" in conditions_table(runs[0])
    # the benchmark's pairs differ by the condition alone: same composites, same ground truth
    pairs = [p.name for p in (tmp_path / "run0" / REFERENCE).iterdir() if p.name.isdigit()]
    for pair in pairs:
        assert (tmp_path / "run0" / REFERENCE / pair / "gt.npz").read_bytes() == \
            (tmp_path / "run0" / "night" / pair / "gt.npz").read_bytes()


def test_bad_input_is_one_line_before_work(tmp_path, run_cli):
    r = run_cli("eval", "conditions", "--segments", SEGMENTS, "--backgrounds", BACKGROUNDS, "--work", tmp_path / "w",
                "--conditions", "night,fog")
    assert r.returncode == 2 and "unknown condition 'fog'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("eval", "conditions", "--segments", SEGMENTS, "--backgrounds", BACKGROUNDS, "--work", tmp_path / "w",
                "-n", "2")
    assert r.returncode == 2 and "at least 4" in r.stderr
    r = run_cli("eval", "conditions", "--segments", SEGMENTS, "--backgrounds", BACKGROUNDS, "--work", tmp_path / "w",
                "--verify-by", "sift")
    assert r.returncode == 2 and "--verify-by must be one of" in r.stderr
    assert not (tmp_path / "w").exists()
