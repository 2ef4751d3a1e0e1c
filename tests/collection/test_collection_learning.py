"""`segswap learn`: ArtMiner's mining and training on an index, the learned tail kept in the index and used."""

import shutil

import numpy as np
import pytest
import torch

from segswap.collection.update import update_index
from segswap.errors import SegswapError

SIZE = 224


@pytest.fixture(scope="module")
def planted(tmp_path_factory, kit):
    """Nine 224×224 images: three show one 150-px textured region (at other places, one of them drawn
    darker), six are unrelated clutter. Indexed on the lite2 block-12 cut that the shipped tail continues."""
    from segswap.collection.update import default_index_backbone

    if default_index_backbone() != "efficientnet-lite2-block12":
        pytest.skip("needs the shipped weights (a tail over efficientnet-lite2-block12)")
    clutter, save = kit.clutter, kit.save
    root = tmp_path_factory.mktemp("learn")
    rng = np.random.default_rng(5)
    shared = clutter(rng, 150, 150)
    for k in range(9):
        image = clutter(rng, 224, 224)
        if k < 3:
            x, y = [(0, 0), (70, 40), (30, 74)][k]
            image[y:y + 150, x:x + 150] = shared if k != 2 else (shared * 0.7).astype(np.uint8)
        save(root / "images" / f"{k}.png", image)
    index, _ = update_index(root / "images", root / "idx", size=SIZE, show_progress=False, keypoints=False)
    return root, index


def _tail():
    from segswap.models.tail import BackboneTail

    return BackboneTail("efficientnet-lite2", 2)


def test_mining_finds_the_planted_copies_and_none_of_the_unrelated_images(planted):
    from segswap.train.collection_learning import DEFAULT_CONF, CollectionFeatures, mine_pairs

    _, index = planted
    data = CollectionFeatures(index, _tail())
    pairs = mine_pairs(data.current(), DEFAULT_CONF, np.random.default_rng(0))
    planted_ids = {data.ids.index(image.id) for image in index.images() if image.path.name in ("0.png", "1.png", "2.png")}
    assert len(pairs) >= 3
    assert all(a in planted_ids and b in planted_ids and a != b for a, _, b, _, _ in pairs), pairs


def test_the_same_seed_gives_the_same_weights_and_a_run_resumes(planted, tmp_path):
    from segswap.collection.index import CollectionIndex
    from segswap.train.collection_learning import learn

    root, _ = planted
    results = []
    for copy in ("one", "two"):
        shutil.copytree(root / "idx", tmp_path / copy)
        with CollectionIndex(tmp_path / copy, snapshot=False) as index:
            summary = learn(index, _tail(), steps=3, seed=1, show_progress=False)
        assert summary.steps == 3 and summary.resumed_from == 0 and summary.pairs > 0
        results.append(_weights(tmp_path / copy))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    before = _weights(root / "idx", shipped=True)
    assert any(not torch.equal(results[0][k], before[k]) for k in before)  # it did learn
    # a later run with a larger budget carries on from the checkpoint instead of starting again
    with CollectionIndex(tmp_path / "one", snapshot=False) as index:
        summary = learn(index, _tail(), steps=5, seed=1, show_progress=False)
    assert summary.resumed_from == 3 and summary.steps == 5
    # another seed is a fresh start
    with CollectionIndex(tmp_path / "two", snapshot=False) as index:
        assert learn(index, _tail(), steps=1, seed=2, show_progress=False).resumed_from == 0


def _weights(index_dir, shipped=False):
    if shipped:
        return _tail().state_dict()
    from safetensors.torch import load_file

    return load_file(str(index_dir / "learned" / "tail.safetensors"))


def test_learned_features_are_used_and_an_index_of_other_images_is_refused(planted, tmp_path, run_cli):
    from segswap.collection.index import CollectionIndex
    from segswap.collection.learned import check_learned, use_learned
    from segswap.pair import load

    root, _ = planted
    shutil.copytree(root / "images", tmp_path / "images")
    update_index(tmp_path / "images", tmp_path / "idx", size=SIZE, show_progress=False, keypoints=False)
    done = run_cli("learn", "--index", tmp_path / "idx", "--steps", "2", "--seed", "0")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "idx" / "learned" / "tail.safetensors").is_file()
    matcher = load(size=SIZE)
    with CollectionIndex(tmp_path / "idx") as index:
        assert use_learned(matcher, index)
        learned = load_file_state(tmp_path)
        assert all(torch.equal(matcher.model.tail.state_dict()[k], v) for k, v in learned.items())
        assert not use_learned(load(size=SIZE), index, learned=False)
    # the collection changes: the learned weights no longer describe it
    shutil.copy(tmp_path / "images" / "5.png", tmp_path / "images" / "extra.png")
    update_index(tmp_path / "images", tmp_path / "idx", size=SIZE, show_progress=False, keypoints=False)
    with CollectionIndex(tmp_path / "idx") as index, pytest.raises(SegswapError, match="learned on other images"):
        check_learned(index)
    done = run_cli("search", tmp_path / "images" / "0.png", "--index", tmp_path / "idx")
    assert done.returncode == 2 and "learned on other images" in done.stderr and done.stderr.strip().count("\n") == 0
    assert run_cli("search", tmp_path / "images" / "0.png", "--index", tmp_path / "idx", "--no-learned",
                   "--top", "2").returncode == 0


def load_file_state(tmp_path):
    from safetensors.torch import load_file

    return load_file(str(tmp_path / "idx" / "learned" / "tail.safetensors"))


def test_learn_refuses_bad_input_in_one_line(tmp_path, run_cli):
    done = run_cli("learn", "--index", tmp_path / "missing")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    (tmp_path / "idx").mkdir()
    done = run_cli("learn", "--index", tmp_path / "idx", "--minutes", "0")
    assert done.returncode == 2 and "--minutes" in done.stderr
