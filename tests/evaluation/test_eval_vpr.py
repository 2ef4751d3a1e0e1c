import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

import segswap
from segswap.errors import SegswapError
from segswap.evaluation.vpr import evaluate_vpr, read_vpr_benchmark, recall_at, reranked


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
    for ranking in ("global", "pair-score", "sift-ransac"):
        assert result["recall"][ranking] == {1: 0.75, 5: 1.0, 10: 1.0}, ranking


def test_cli_prints_the_three_rankings(toy, tmp_path):
    out = tmp_path / "vpr.json"
    r = subprocess.run([sys.executable, "-c", "from segswap.cli import main; main()", "eval", "vpr", str(toy),
                        "--model", "correlation", "--size", "128", "--shortlist", "3", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| global descriptor | 0.750 | 1.000 | 1.000 |" in r.stdout
    assert json.loads(out.read_text())["recall"]["sift-ransac"] == {"1": 0.75, "5": 1.0, "10": 1.0}
