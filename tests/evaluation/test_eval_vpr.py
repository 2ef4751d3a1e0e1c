import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import segswap
from segswap.errors import SegswapError
from segswap.evaluation.vpr import evaluate_vpr, read_ground_truth, read_vpr_benchmark, recall_at, reranked


def _place(seed, h=96, w=128):
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 127, np.uint8)
    for _ in range(60):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(image, (x, y), (x + int(rng.integers(4, 25)), y + int(rng.integers(4, 25))), colour, -1)
    return image


def _save_truth(path, rows):
    truth = np.empty((len(rows), 2), dtype=object)  # VPR-Bench's ragged layout
    for i, (query, refs) in enumerate(rows):
        truth[i, 0], truth[i, 1] = query, list(refs)
    np.save(path, truth, allow_pickle=True)


@pytest.fixture
def toy(tmp_path):
    """4 places; query q shows place ORDER[q], slightly shifted and brighter."""
    (tmp_path / "query").mkdir()
    (tmp_path / "ref").mkdir()
    places = [_place(seed) for seed in range(4)]
    for r, image in enumerate(places):
        Image.fromarray(image).save(tmp_path / "ref" / f"{r:07d}.png")
    order = [2, 0, 3, 1]
    for q, r in enumerate(order):
        moved = np.clip(np.roll(places[r], 3, axis=1).astype(int) + 15, 0, 255).astype(np.uint8)
        Image.fromarray(moved).save(tmp_path / "query" / f"{q:07d}.png")
    # Query 3 shows place 1, but the ground truth says place 0: a known miss at rank 1.
    _save_truth(tmp_path / "ground_truth_new.npy", [(0, [2]), (1, [0]), (2, [3]), (3, [0])])
    return tmp_path


def test_recall_and_reranking_by_hand():
    truth = {0: {0}, 1: {1, 2}, 2: {5}, 3: set()}
    rankings = {0: [0, 1, 2], 1: [0, 2, 1], 2: [1, 2, 0, 3, 4, 5], 3: [0]}
    assert recall_at(rankings, truth, ks=(1, 2, 6)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 6: 1.0}
    assert reranked([4, 7, 1, 9], [0.1, 0.9, 0.5], shortlist=3) == [7, 1, 4, 9]
    assert reranked([4, 7, 1], [2, 2, 3], shortlist=3) == [1, 4, 7]  # ties keep the global order
    with pytest.raises(SegswapError, match="no query has a correct reference"):
        recall_at({0: [0]}, {0: set()})


def test_reads_the_layout_and_checks_indices(toy):
    bench = read_vpr_benchmark(toy)
    assert len(bench.queries) == len(bench.references) == 4
    assert bench.truth == {0: {2}, 1: {0}, 2: {3}, 3: {0}}
    _save_truth(toy / "ground_truth_new.npy", [(0, [7])])
    with pytest.raises(SegswapError, match="out of range"):
        read_vpr_benchmark(toy)
    (toy / "ground_truth_new.npy").unlink()
    with pytest.raises(SegswapError, match="not a VPR-Bench folder"):
        read_vpr_benchmark(toy)


def test_toy_set_gives_the_known_recall(toy):
    result = evaluate_vpr(toy, segswap.load("correlation", size=128), shortlist=3, show_progress=False)
    assert result["queries"] == 4 and result["references"] == 4
    for ranking in ("global", "pair-score", "artminer-ransac", "sift-ransac"):
        assert result["recall"][ranking] == {1: 0.75, 5: 1.0, 10: 1.0}, ranking
        assert result["first_correct_rank"][ranking][3] > 1 and result["first_correct_rank"][ranking][0] == 1


def test_cli_prints_the_three_rankings(toy, tmp_path, run_cli):
    out = tmp_path / "vpr.json"
    r = run_cli("eval", "vpr", toy, "--model", "correlation", "--size", "128", "--shortlist", "3", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "| global descriptor | 0.750 | 1.000 | 1.000 |" in r.stdout
    assert json.loads(out.read_text())["recall"]["sift-ransac"] == {"1": 0.75, "5": 1.0, "10": 1.0}


def test_same_place_pairs_hold_every_correct_reference_and_the_hardest_wrong_ones(toy):
    from segswap.evaluation.same_place import query_reference_pairs

    bench = read_vpr_benchmark(toy)
    descriptors_q = torch.eye(4)
    descriptors_r = torch.tensor([[0.0, 0.9, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.8, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    pairs, labels = query_reference_pairs(bench, descriptors_q, descriptors_r, negatives=2)
    assert sum(labels) == 4 and len(pairs) == 12
    query0 = [(r, label) for (q, r), label in zip(pairs, labels) if q == 0]
    assert query0[0] == (2, 1) and query0[1] == (1, 0)  # the correct reference, then the most similar wrong one


def test_same_place_cli_scores_three_classifiers(toy, tmp_path, run_cli):
    from segswap.models.scott import ScottMatcher
    from segswap.models.weights import save_weights

    torch.manual_seed(0)
    weights = tmp_path / "scott.safetensors"  # random weights: this checks the command, not accuracy
    save_weights(weights, ScottMatcher(dim=16, stages=2, matcher_dim=8, pool=4, alpha=0.3), backbone="efficientnet-lite2",
                 size=128, info={"validation": {"val_threshold": 0.5}})
    out = tmp_path / "same.json"
    r = run_cli("eval", "same-place", toy, "--scott-weights", weights, "--model", "correlation", "--negatives", "2",
                "--json", out)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["pairs"] == 12 and result["positives"] == 4
    assert set(result["classifiers"]) == {"scott", "scott (oracle threshold)", "pair-score", "artminer-ransac"}
    assert result["classifiers"]["scott"]["threshold"] == 0.5
    for row in result["classifiers"].values():
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 and 0 < row["average_precision"] <= 1
    assert "| scott | synthetic calibration | 0.500 |" in r.stdout


def test_first_correct_ranks_and_the_paired_change():
    from segswap.evaluation.vpr import first_correct_ranks, paired_recall_change

    truth = {0: {0}, 1: {1, 2}, 2: {5}, 3: set()}
    ranks_a = first_correct_ranks({0: [0, 1], 1: [0, 2, 1], 2: [1, 2], 3: [0]}, truth)
    assert ranks_a == {0: 1, 1: 2, 2: None}  # query 3 has no correct reference, 5 is never ranked for 2
    ranks_b = {0: 2, 1: 1, 2: 1}
    change = paired_recall_change(ranks_a, ranks_b, k=1)
    assert change["gained"] == [1, 2] and change["lost"] == [0] and change["queries"] == 3
    assert (change["recall_a"], change["recall_b"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert change["p_value"] == pytest.approx(1.0)  # 2 against 1 is an even split's likely outcome
    many = paired_recall_change({q: 2 for q in range(12)}, {q: 1 for q in range(12)})
    assert many["p_value"] == pytest.approx(2 * 0.5 ** 12)  # 12 gained, none lost
    assert paired_recall_change(ranks_a, ranks_a, k=2)["p_value"] == 1.0
    with pytest.raises(SegswapError, match="different queries"):
        paired_recall_change(ranks_a, {0: 1})


class _Exploit:
    """An object whose unpickling runs code: it writes the file named by ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("command", ["vpr", "same-place"])
def test_a_crafted_ground_truth_is_refused_without_running_it(toy, tmp_path, run_cli, command):
    """Item 15 of issue 21: ground_truth_new.npy was read with allow_pickle=True, and a crafted
    __reduce__ ran."""
    marker = tmp_path / "ran"
    crafted = np.empty(2, dtype=object)
    crafted[0], crafted[1] = (0, [1]), _Exploit(marker)
    np.save(toy / "ground_truth_new.npy", crafted, allow_pickle=True)
    r = run_cli("eval", command, toy, "--model", "correlation")
    assert r.returncode == 2 and not marker.exists(), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "refused" in r.stderr and "Path" in r.stderr


def test_the_published_ground_truth_still_loads():
    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eval" / "vpr_corridor" / "ground_truth_new.npy"
    if not path.is_file():
        pytest.skip("shared data not present")
    truth = read_ground_truth(path)
    assert len(truth) == 111 and truth[0] == {0, 1, 2}
