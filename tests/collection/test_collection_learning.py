"""`segswap learn`: ArtMiner's mining on the collection, learning that resumes, weights kept in the index."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import segswap
from segswap.collection.index import CollectionIndex
from segswap.collection.learned import checked_learned, images_hash
from segswap.collection.update import update_index
from segswap.errors import SegswapError
from segswap.train.collection_learning import CollectionFeatures, DEFAULT_CONF, learn_collection, mine_pairs

PLANTED = ("00.png", "01.png", "02.png")
PLACES = ((0, 0), (96, 40), (50, 96))  # where each planted image holds the 192-px square (x, y)


@pytest.fixture(scope="module")
def learnable(tmp_path_factory, kit):
    """Six 288-px cluttered images; the same 192-px textured square is pasted into three of them, at three
    places (about 9×9 cells at the tests' index size: room for ArtMiner's 8×8-cell training regions)."""
    root = tmp_path_factory.mktemp("learnable")
    rng = np.random.default_rng(5)
    square, _ = kit.planted_object(77, 192, "text")
    for i in range(6):
        image = kit.clutter(rng, 288, 288)
        if i < 3:
            x, y = PLACES[i]
            image[y:y + 192, x:x + 192] = square
        kit.save(root / "images" / f"{i:02d}.png", image)
    index, _ = update_index(root / "images", root / "idx", size=kit.SIZE, show_progress=False, keypoints=False)
    index.close()
    return root


def _shipped(size):
    return segswap.load(size=size)


def _copy(learnable, tmp_path):
    shutil.copytree(learnable / "idx", tmp_path / "idx")
    return CollectionIndex(tmp_path / "idx", snapshot=False)


def test_mining_finds_the_planted_copies_and_none_of_the_other_images(learnable, kit):
    index = CollectionIndex(learnable / "idx")
    tail = _shipped(kit.SIZE).model.tail
    feats = CollectionFeatures(index, tail, keep_initial=False)
    names = [index.image(i).path.name for i in feats.ids]
    found = [pair for seed in range(3) for pair in mine_pairs(feats.current(), DEFAULT_CONF, np.random.default_rng(seed))]
    assert found
    assert all(names[a] in PLANTED and names[b] in PLANTED and a != b for a, _, b, _, _ in found)


def test_the_same_seed_gives_the_same_weights(learnable, kit, tmp_path):
    weights = []
    for run in ("one", "two"):
        (tmp_path / run).mkdir()
        with _copy(learnable, tmp_path / run) as index:
            summary = learn_collection(index, _shipped(kit.SIZE), steps=2, seed=3, show_progress=False)
            assert summary.steps == (2, 2) and summary.pairs[0] > 0
        weights.append([(tmp_path / run / "idx" / "learned" / name).read_bytes()
                        for name in ("tail.safetensors", "transformer.safetensors")])
    from safetensors.torch import load as load_bytes

    for one, two in zip(*weights):  # the tensors (the files' metadata is written in no fixed key order)
        first, second = load_bytes(one), load_bytes(two)
        assert first.keys() == second.keys() and all((first[k] == second[k]).all() for k in first)
    shipped = _shipped(kit.SIZE).model.state_dict()
    from safetensors.torch import load_file

    learned = load_file(str(tmp_path / "one" / "idx" / "learned" / "transformer.safetensors"))
    assert any(not np.allclose(learned[k].numpy(), shipped[k].numpy()) for k in learned)  # it learned something


def test_a_stopped_run_continues_from_its_checkpoint(learnable, kit, tmp_path):
    with _copy(learnable, tmp_path) as index:
        first = learn_collection(index, _shipped(kit.SIZE), steps=1, seed=0, show_progress=False)
        assert not first.resumed
        again = learn_collection(index, _shipped(kit.SIZE), steps=3, seed=0, show_progress=False)
        assert again.resumed and again.steps == (3, 3)
        record = json.loads((tmp_path / "idx" / "learned" / "learned.json").read_text())
        assert record["stages"]["features"]["steps"] == 3 and record["images_hash"] == images_hash(index)
        # another seed is another run: it starts afresh
        other = learn_collection(index, _shipped(kit.SIZE), steps=1, seed=9, show_progress=False)
        assert not other.resumed


def test_the_learned_weights_are_used_and_refused_once_the_images_change(learnable, kit, tmp_path, invoke_cli, run_cli):
    images = tmp_path / "images"
    shutil.copytree(learnable / "images", images)
    index, _ = update_index(images, tmp_path / "idx", size=kit.SIZE, show_progress=False, keypoints=False)
    with index:
        learn_collection(index, _shipped(kit.SIZE), steps=1, seed=0, show_progress=False)
        folder = checked_learned(index)
    matcher = segswap.pair.load(size=kit.SIZE, learned=folder)
    assert matcher.learned == str(folder)
    assert matcher.load_arguments["learned"] == str(folder.resolve())  # a cluster's workers load the same
    query = images / "00.png"
    found = invoke_cli("search", query, "--index", tmp_path / "idx", "--top", 2)
    assert found.exit_code == 0, found.output
    assert "using the weights learned on this collection" in found.output
    # an image changes: the index no longer holds what the weights were learned on
    kit.save(images / "05.png", kit.clutter(np.random.default_rng(1), 288, 288))
    update_index(images, tmp_path / "idx", show_progress=False)
    refused = run_cli("search", query, "--index", tmp_path / "idx", "--top", 2)
    assert refused.returncode == 2 and "learned on other images" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert invoke_cli("search", query, "--index", tmp_path / "idx", "--top", 2, "--shipped").exit_code == 0


def test_learned_weights_need_the_model_they_were_learned_from(learnable, kit, tmp_path):
    with _copy(learnable, tmp_path) as index:
        learn_collection(index, _shipped(kit.SIZE), steps=1, seed=0, show_progress=False)
    with pytest.raises(SegswapError, match="has none"):
        segswap.pair.load("correlation", size=kit.SIZE, learned=tmp_path / "idx" / "learned")
    with pytest.raises(SegswapError, match="no learned weights"):
        segswap.pair.load(size=kit.SIZE, learned=tmp_path)


def test_learn_refuses_bad_input_in_one_line(learnable, tmp_path, run_cli):
    missing = run_cli("learn", "--index", tmp_path / "nowhere")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    budget = run_cli("learn", "--index", learnable / "idx", "--minutes", 0)
    assert budget.returncode == 2 and "--minutes" in budget.stderr and "Traceback" not in budget.stderr
    with CollectionIndex(learnable / "idx") as index:
        assert not (index.path / "learned").exists()  # nothing was started


def test_a_killed_learn_resumes_where_its_last_round_ended(learnable, tmp_path, run_cli):
    import signal
    import subprocess
    import time

    shutil.copytree(learnable / "idx", tmp_path / "idx")
    checkpoint = tmp_path / "idx" / "learned" / "features_checkpoint.safetensors"
    process = subprocess.Popen(run_cli.command("learn", "--index", tmp_path / "idx", "--steps", 30),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (tmp_path / "idx" / "learned" / "learned.json").exists()
    done = run_cli("learn", "--index", tmp_path / "idx", "--steps", 30, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout and (tmp_path / "idx" / "learned" / "learned.json").exists()


def _learned_index(images, index_dir, kit):
    index, _ = update_index(images, index_dir, size=kit.SIZE, show_progress=False, keypoints=False)
    with index:
        learn_collection(index, _shipped(kit.SIZE), steps=1, seed=0, show_progress=False)


def _spy_on_load(monkeypatch):
    """The ``learned`` folder of every pair model the benchmark loads."""
    seen, load = [], segswap.pair.load

    def spied(*args, **kwargs):
        seen.append(kwargs.get("learned"))
        return load(*args, **kwargs)
    monkeypatch.setattr(segswap.pair, "load", spied)
    return seen


def test_eval_coseg_and_vpr_run_the_weights_learned_on_the_benchmark(learnable, kit, tmp_path, invoke_cli, monkeypatch):
    from PIL import Image

    coseg = tmp_path / "coseg"
    for name, (x, y) in zip(PLANTED, PLACES):  # the planted square is the group's common object
        (coseg / "images" / "square").mkdir(parents=True, exist_ok=True)
        shutil.copy(learnable / "images" / name, coseg / "images" / "square" / name)
        (coseg / "groundtruth" / "square").mkdir(parents=True, exist_ok=True)
        truth = np.zeros((288, 288), np.uint8)
        truth[y:y + 192, x:x + 192] = 255
        Image.fromarray(truth).save(coseg / "groundtruth" / "square" / name)
    _learned_index(coseg / "images", tmp_path / "coseg_idx", kit)
    seen = _spy_on_load(monkeypatch)
    done = invoke_cli("eval", "coseg", coseg, "--method", "segswap", "--index", tmp_path / "coseg_idx",
                      "--json", tmp_path / "coseg.json")
    assert done.exit_code == 0, done.output
    learned = (tmp_path / "coseg_idx" / "learned").resolve()
    assert {Path(s).resolve() for s in seen if s is not None} == {learned}
    record = json.loads((tmp_path / "coseg.json").read_text())["learned"]
    assert record["benchmark_images"] == record["benchmark_images_in_index"] == record["index_images"] == 3

    vpr = tmp_path / "vpr"
    for folder, names in (("query", PLANTED[:1]), ("ref", ("01.png", "03.png", "04.png"))):
        (vpr / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(learnable / "images" / name, vpr / folder / name)
    truth = np.empty((1, 2), dtype=object)
    truth[0, 0], truth[0, 1] = 0, [0]
    np.save(vpr / "ground_truth_new.npy", truth, allow_pickle=True)
    _learned_index(vpr, tmp_path / "vpr_idx", kit)
    seen.clear()
    done = invoke_cli("eval", "vpr", vpr, "--keypoints", "none", "--index", tmp_path / "vpr_idx",
                      "--json", tmp_path / "vpr.json")
    assert done.exit_code == 0, done.output
    assert {Path(s).resolve() for s in seen if s is not None} == {(tmp_path / "vpr_idx" / "learned").resolve()}
    result = json.loads((tmp_path / "vpr.json").read_text())
    assert result["learned"]["benchmark_images_in_index"] == 4 and result["recall"]["pair-score"]["1"] == 1.0


def test_eval_index_without_learned_weights_or_with_other_weights_is_refused(learnable, tmp_path, run_cli):
    coseg = tmp_path / "coseg"
    (coseg / "images" / "g").mkdir(parents=True)
    (coseg / "groundtruth" / "g").mkdir(parents=True)
    from PIL import Image

    for name in PLANTED[:2]:
        shutil.copy(learnable / "images" / name, coseg / "images" / "g" / name)
        Image.fromarray(np.zeros((288, 288), np.uint8)).save(coseg / "groundtruth" / "g" / name)
    for args, words in (((), "holds no learned weights"),
                        (("--method", "centre-box"), "runs none"),
                        (("--weights", learnable / "images" / "00.png"), "drop --model/--weights")):
        refused = run_cli("eval", "coseg", coseg, "--index", learnable / "idx", *args)
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
