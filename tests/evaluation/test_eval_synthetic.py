import json

import pytest

import segswap
from segswap.errors import SegswapError
from segswap.evaluation.synthetic import evaluate_synthetic
from segswap.synth.reader import pairs_size


def test_held_out_pairs_are_scored_with_negatives(tmp_path, fake_synth):
    folder = fake_synth(tmp_path / "pairs", n=6)
    result = evaluate_synthetic([folder], segswap.load("correlation", size=pairs_size([folder])), show_progress=False)
    assert result["pairs"] == 6 and result["size"] == 64
    assert 0 <= result["iou"] <= 1 and 0 <= result["within_1_cell"] <= 1 and 0 <= result["negative_area"] <= 1
    assert result["corr_err_median"] <= result["corr_err_cells"] * 3
    # the training-free correlation is mirror-equivariant, so averaging with the mirrored pair changes nothing
    mirrored = evaluate_synthetic([folder], segswap.load("correlation", size=64), show_progress=False, flip=True)
    assert mirrored["flip"] and not result["flip"]
    for key in ("iou", "corr_err_cells", "negative_area"):
        assert mirrored[key] == pytest.approx(result[key], abs=1e-4), key


def test_folders_of_two_sizes_are_refused(tmp_path, fake_synth):
    small, large = fake_synth(tmp_path / "a", n=2), fake_synth(tmp_path / "b", n=2, size=96)
    with pytest.raises(SegswapError, match="different sizes"):
        pairs_size([small, large])
    with pytest.raises(SegswapError, match="config.json"):
        pairs_size([tmp_path])


def test_cli_prints_the_table_and_writes_json(tmp_path, fake_synth, run_cli):
    folder = fake_synth(tmp_path / "pairs", n=4)
    out = tmp_path / "r.json"
    r = run_cli("eval", "synthetic", folder, "--model", "correlation", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "mask IoU" in r.stdout and json.loads(out.read_text())["pairs"] == 4
    bad = run_cli("eval", "synthetic", tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
