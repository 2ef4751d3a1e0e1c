import json

import cv2
import numpy as np
import pytest
import torch

import segswap
from segswap.errors import SegswapError
from segswap.train import matcher_training
from segswap.synth.cache import FeatureCache, build_cache
from segswap.train.loop import export, train
from segswap.train.mining import mine_hard_negatives
from segswap.models import ALL_MODEL_CLASSES
from segswap.train.ablations import ABLATIONS
from segswap.train.recipes import RECIPES, get_recipe, recipe_hash


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, fake_synth):
    return fake_synth(tmp_path_factory.mktemp("synth"))


TINY = {"size": 64}


def test_cache_holds_features_and_truth(pairs):
    root = build_cache(pairs, "efficientnet-lite2", 64, show_progress=False)
    cache = FeatureCache([root])
    assert len(cache) == 8 and cache.channels == 120
    batch = cache.get([0, 3])
    assert batch["feats_a"].shape == (2, 120, 4, 4) and batch["flow_ab"].shape == (2, 4, 4, 2)
    assert torch.allclose(batch["feats_a"].norm(dim=1), torch.ones(2, 4, 4), atol=1e-2)  # float16 storage
    assert build_cache(pairs, "efficientnet-lite2", 64, show_progress=False) == root  # complete: nothing redone


def train_killed_then_resumed(pairs, run_dir, overrides, monkeypatch) -> None:
    """A tiny run killed after its step-4 checkpoint, refused a fresh start there, then resumed."""
    real_loss, calls = matcher_training.segswap_loss, {"n": 0}

    def dying_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # after the checkpoint written at step 4
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(matcher_training, "segswap_loss", dying_loss)
    with pytest.raises(KeyboardInterrupt):
        train([pairs], run_dir, config="tiny", show_progress=False, overrides=overrides)
    monkeypatch.setattr(matcher_training, "segswap_loss", real_loss)
    with pytest.raises(SegswapError, match="--resume"):
        train([pairs], run_dir, config="tiny", show_progress=False, overrides=overrides)
    train([pairs], run_dir, resume=True, show_progress=False)


def test_train_resume_after_a_kill_reaches_the_same_state(pairs, tmp_path, monkeypatch):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train([pairs], straight, config="tiny", show_progress=False, overrides=TINY)
    train_killed_then_resumed(pairs, killed, TINY, monkeypatch)

    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    log = (killed / "log.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in log[1:]] == list(range(8))  # no step logged twice
    assert (killed / "curves.png").is_file() and (killed / "val.csv").is_file()


def test_a_moving_average_of_the_weights_resumes_and_is_what_exports(pairs, tmp_path, monkeypatch):
    overrides = {**TINY, "ema_decay": 0.5}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train([pairs], straight, config="tiny", show_progress=False, overrides=overrides)
    train_killed_then_resumed(pairs, killed, overrides, monkeypatch)
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k

    averaged = {k.removeprefix("module."): v for k, v in a["ema"].items() if k.startswith("module.")}
    assert any(not torch.equal(averaged[k], a["model"][k]) for k in a["model"])  # an average, not the last step
    export(straight, tmp_path / "w.safetensors")
    matcher = segswap.load(weights=tmp_path / "w.safetensors")
    for k, v in matcher.model.state_dict().items():
        assert torch.equal(v, averaged[k]), k
    # Recipes without the option keep their hashes: the key is absent, not 0.
    assert "ema_decay" not in get_recipe("default") and get_recipe("default-ema")["ema_decay"] == 0.998


def test_hard_negatives_are_mined_from_predictions(pairs):
    cache = FeatureCache([build_cache(pairs, "efficientnet-lite2", 64, show_progress=False)])
    model = segswap.models.SegSwapTransformer(input_dim=120, dim=32, ffn_dim=32, layers="ICI").eval()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        model.head.bias[2] = 5.0  # predicts "shared" everywhere: every negative is hard
    kept = mine_hard_negatives(model, cache, np.arange(8), rng, {"pool": 10, "threshold": 0.5})
    assert kept.shape == (10, 2) and (kept[:, 0] != kept[:, 1]).all()
    with torch.no_grad():
        model.head.bias[2] = -5.0  # predicts nothing: no negative is hard
    assert len(mine_hard_negatives(model, cache, np.arange(8), rng, {"pool": 10, "threshold": 0.5})) == 0


def test_one_step_decreases_the_loss_on_a_fixed_batch(pairs):
    cache = FeatureCache([build_cache(pairs, "efficientnet-lite2", 64, show_progress=False)])
    inputs, target = matcher_training.make_batch(cache, np.array([0, 1, 2]), np.array([[0, 1], [2, 3]]))
    loss = segswap.train.losses.segswap_loss
    # Each term alone, then the default recipe's weighted total: one SGD step on it lowers it.
    terms = ("mask", "transported", "corr", "dice", "jaccard", "false_positive", "match_nll")
    for term in terms + ("total",):
        weights = get_recipe()["loss_weights"] if term == "total" else {k: float(k == term) for k in terms}
        torch.manual_seed(0)
        head = "match" if term == "match_nll" else "regress"  # the match loss needs the soft-argmax head's logits
        model = segswap.models.SegSwapTransformer(input_dim=120, dim=32, ffn_dim=32, dropout=0.0, flow_head=head,
                                                  correlation_prior=False, context_convs=0, consensus_radius=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        before = loss(model(inputs), target, weights)
        opt.zero_grad()
        before["total"].backward()
        opt.step()
        after = loss(model(inputs), target, weights)
        assert after[term] < before[term], term


def test_exported_weights_match_the_checkpoint(pairs, tmp_path):
    run = tmp_path / "run"
    train([pairs], run, config="tiny", show_progress=False, overrides=TINY)
    config = export(run, tmp_path / "w.safetensors")
    assert config["backbone"] == "efficientnet-lite2" and config["size"] == 64 and len(config["recipe"]) == 12
    matcher = segswap.load(weights=tmp_path / "w.safetensors")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    reference = segswap.models.SegSwapTransformer(input_dim=120, **json.loads((run / "recipe.json").read_text())["model_conf"])
    reference.load_state_dict(state["model"])
    reference.eval()
    feats = torch.nn.functional.normalize(torch.randn(1, 120, 4, 4), dim=1)
    with torch.no_grad():
        x = reference({"feats_a": feats, "feats_b": feats.flip(-1)})
        y = matcher.model({"feats_a": feats, "feats_b": feats.flip(-1)})
    for k in x:
        assert torch.equal(x[k], y[k])


def test_a_fine_tuned_backbone_tail_trains_exports_and_loads(pairs, tmp_path):
    run = tmp_path / "run"
    tail = {"tail_blocks": 2, "tail_lr_scale": 0.5}
    with pytest.raises(SegswapError, match="continues from backbone efficientnet-lite2-block12"):
        train([pairs], tmp_path / "wrong", config="tiny", show_progress=False, overrides={**TINY, "model_conf": tail})
    train([pairs], run, config="tiny", show_progress=False,
          overrides={**TINY, "backbone": "efficientnet-lite2-block12", "model_conf": tail})
    config = export(run, tmp_path / "w.safetensors")
    assert config["backbone"] == "efficientnet-lite2-block12" and config["conf"]["tail_blocks"] == 2
    matcher = segswap.load(weights=tmp_path / "w.safetensors")
    assert matcher.backbone.name == "efficientnet-lite2-block12"
    pretrained = segswap.models.tail.BackboneTail("efficientnet-lite2", 2).state_dict()
    trained = matcher.model.tail.state_dict()
    assert any(not torch.equal(pretrained[k], trained[k]) for k in pretrained if k.endswith("weight"))
    # the tail's batch-norm statistics are the pretrained ones: training never re-estimates them
    assert all(torch.equal(pretrained[k], trained[k]) for k in pretrained if "running" in k)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)["optimizer"]
    assert [g["lr_scale"] for g in checkpoint["param_groups"]] == [1.0, 0.5]
    result = matcher.match(pairs / "000000" / "a.jpg", pairs / "000000" / "b.jpg")
    assert result["mask_a"].shape[:2] == cv2.imread(str(pairs / "000000" / "a.jpg")).shape[:2]


def _fake_coseg(root, groups=("cup", "key"), n=3, size=64):
    rng = np.random.default_rng(1)
    for group in groups:
        (root / "images" / group).mkdir(parents=True)
        (root / "groundtruth" / group).mkdir(parents=True)
        for k in range(n):
            image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
            truth = np.zeros((size, size), np.uint8)
            truth[16:48, 16:48] = 255
            truth[0, :] = 128
            cv2.imwrite(str(root / "images" / group / f"{k}.png"), image)
            cv2.imwrite(str(root / "groundtruth" / group / f"{k}.png"), truth)
    return root


def test_coseg_pair_validation_scores_every_group(tmp_path):
    from segswap.evaluation.coseg import CosegPairValidation

    validation = CosegPairValidation(_fake_coseg(tmp_path), "efficientnet-lite2", 64, pairs_per_group=2)
    assert {g: len(p) for g, p in validation.pairs.items()} == {"cup": 2, "key": 2}

    class Everywhere(torch.nn.Module):  # says "shared" everywhere: J = object area / image area
        def forward(self, data):
            fa, fb = data["feats_a"], data["feats_b"]
            ones = lambda f: torch.ones(f.shape[0], *f.shape[2:])
            half = lambda f: torch.full((f.shape[0], *f.shape[2:], 2), 0.5)
            return {"mask_a": ones(fa), "mask_b": ones(fb), "flow_ab": half(fa), "flow_ba": half(fb)}

    scores = validation(Everywhere())
    expected = 32 * 32 / (63 * 64)  # the object over the non-ignored pixels
    assert scores["cup"] == pytest.approx(expected, abs=1e-6) and scores["mean"] == pytest.approx(expected, abs=1e-6)


def test_scott_trains_in_two_stages_and_exports_a_verifier(pairs, tmp_path):
    from segswap.verify.same_object import load_verifier

    run = tmp_path / "scott"
    metrics = train([pairs], run, config="scott-tiny", show_progress=False, overrides=TINY)
    stages = [row.split(",")[1] for row in (run / "log.csv").read_text().splitlines()[1:]]
    assert stages == ["segmentation"] * 2 + ["main"] * 4  # paper §4.3: matching pairs first
    assert {"val_iou", "val_f1", "val_ap", "val_threshold"} <= set(metrics)
    config = export(run, tmp_path / "scott.safetensors")
    assert config["model"] == "scott" and "val_threshold" in config["info"]["validation"]
    verifier = load_verifier(tmp_path / "scott.safetensors", threshold=0.5)
    a, b = pairs / "000000" / "a.jpg", pairs / "000000" / "b.jpg"
    forward, backward = verifier.verify(a, b), verifier.verify(b, a)
    assert forward["match"] == backward["match"] and forward["probability"] == pytest.approx(backward["probability"], abs=1e-6)
    with pytest.raises(SegswapError, match="not a pair model"):
        segswap.load(weights=tmp_path / "scott.safetensors")


def test_scott_refuses_coseg_validation(pairs, tmp_path):
    with pytest.raises(SegswapError, match="SCOTT has none"):
        train([pairs], tmp_path / "run", config="scott-tiny", show_progress=False, overrides=TINY, val_coseg=tmp_path)


def test_same_class_negatives_pair_different_objects_of_one_class(tmp_path):
    from segswap.synth.negatives import object_classes, same_class_negatives

    class FakeCache:  # the two things the miners read: pair folders and shared photos
        pair_dirs = []

        @staticmethod
        def shares_content(i, j):
            return {i, j} == {0, 1}  # pairs 0 and 1 were made from the same photo

    classes_of = {0: "dog", 1: "dog", 2: "dog", 3: "car", 4: "car"}
    for i, name in classes_of.items():
        d = tmp_path / f"{i:06d}"
        d.mkdir()
        side = {"source": "/x.jpg", "objects": [{"segment": "x.jpg:1", "class": name, "on_canvas": True}]}
        (d / "meta.json").write_text(json.dumps({"a": side, "b": side}))
        FakeCache.pair_dirs.append(d)
    classes = object_classes(FakeCache, np.arange(5))
    assert classes[0] == (frozenset({"dog"}), frozenset({"dog"})) and classes[4][1] == frozenset({"car"})
    pairs = same_class_negatives(np.random.default_rng(0), classes, 40, FakeCache)
    assert len(pairs) == 40
    for i, j in pairs:
        assert i != j and classes_of[int(i)] == classes_of[int(j)] and {int(i), int(j)} != {0, 1}


def test_object_classes_read_yolo_label_lines_when_meta_lacks_them(tmp_path):
    from segswap.synth.negatives import object_classes

    (tmp_path / "coco" / "images").mkdir(parents=True)
    (tmp_path / "coco" / "labels").mkdir()
    (tmp_path / "coco" / "labels" / "p.txt").write_text("3 0 0 1 0 1 1\n17 0 0 1 0 1 1\n")
    pair = tmp_path / "000000"
    pair.mkdir()
    side = {"source": str(tmp_path / "coco" / "images" / "p.jpg"), "objects": [{"segment": "p.jpg:2"}]}
    (pair / "meta.json").write_text(json.dumps({"a": side, "b": side}))

    class FakeCache:
        pair_dirs = [pair]

    assert object_classes(FakeCache, np.arange(1))[0] == (frozenset({"17"}), frozenset({"17"}))


def test_recipes_refuse_unknown_options_but_models_may_gain_new_ones():
    with pytest.raises(SegswapError, match="unknown recipe option"):
        get_recipe("default", learning_rate=1.0)
    plain, finetune = get_recipe("plain"), get_recipe("finetune")
    # A model option newer than the base recipe goes into model_conf; the older recipes keep their hash.
    assert "tail_blocks" not in plain["model_conf"] and finetune["model_conf"]["tail_blocks"] == 2
    assert recipe_hash(plain) != recipe_hash(get_recipe("default"))
    for name in {**RECIPES, **ABLATIONS}:
        recipe = get_recipe(name)
        ALL_MODEL_CLASSES[recipe["model"]](input_dim=8, **recipe["model_conf"])  # every recipe builds its model


def test_pairs_of_the_old_synth_format_are_refused(tmp_path, fake_synth):
    old = fake_synth(tmp_path / "old", n=2)
    (old / "config.json").write_text(json.dumps({"format_version": 1}))
    with pytest.raises(SegswapError, match="format 1"):
        build_cache(old, "efficientnet-lite2", 64, show_progress=False)


def test_image_jaccard_weighs_each_image_alike_and_leaves_negatives_out():
    from segswap.train.losses import batch_dice, image_jaccard
    target = torch.zeros(3, 8, 8)
    target[0, :6, :6] = 1  # a large object
    target[1, 0, 0] = 1    # a one-cell object; image 2 is a negative
    miss_small = target.clone()
    miss_small[1] = 0
    miss_small[2, 4:, 4:] = 1  # a false positive on the negative does not count here
    assert torch.isclose(image_jaccard(target, target), torch.tensor(0.0))
    # Missing the one-cell object costs half the loss; the batch Dice hardly notices it.
    assert torch.isclose(image_jaccard(miss_small, target), torch.tensor(0.5))
    assert batch_dice(miss_small * (target > 0), target) < 0.05
    assert torch.isclose(image_jaccard(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4)), torch.tensor(0.0))


def test_image_false_positive_charges_negatives_against_a_typical_object():
    from segswap.train.losses import image_false_positive
    target = torch.zeros(3, 8, 8)
    target[0, :4, :4] = 1  # positives of 16 and 4 cells: a typical object is 10 cells
    target[1, :2, :2] = 1
    pred = target.clone()
    assert torch.isclose(image_false_positive(pred, target), torch.tensor(0.0))
    pred[2, :2, :5] = 1  # 10 cells marked on the negative
    assert torch.isclose(image_false_positive(pred, target), torch.tensor(0.5))
    pred[0] = 0  # errors on positives are not its business
    assert torch.isclose(image_false_positive(pred, target), torch.tensor(0.5))
    assert image_false_positive(pred[:2], target[:2]) == 0  # no negatives
    assert image_false_positive(pred[2:], target[2:]) == 0  # no positive to size a typical object by


def test_match_nll_targets_the_true_point_and_penalises_split_or_spread_matches():
    from segswap.train.losses import bilinear_cell_target, match_nll

    flow = torch.tensor([[[[0.3, 0.55]]]])  # one cell of a, matched in a 4×4 grid of b
    target = bilinear_cell_target(flow, (4, 4))
    assert torch.allclose(target.sum(-1), torch.ones(1, 1))
    centres = torch.stack(torch.meshgrid((torch.arange(4) + 0.5) / 4, (torch.arange(4) + 0.5) / 4, indexing="xy"), -1).reshape(-1, 2)
    assert torch.allclose(target[0, 0] @ centres, flow.view(2), atol=1e-6)  # the weights' centroid is the point
    mask = torch.ones(1, 1, 1)
    exact = target.clamp(min=1e-12).log()  # the distribution is the target's: its soft-argmax is the point
    far = torch.zeros(1, 1, 16)
    far[0, 0, 15] = 1.0
    split = (0.5 * target + 0.5 * far).clamp(min=1e-12).log()  # half of it on a far, wrong cell
    spread = torch.zeros(1, 1, 16)
    nll = {name: match_nll(logits, flow, mask, (4, 4), dim=2) for name, logits in
           (("exact", exact), ("split", split), ("spread", spread))}
    assert nll["exact"] < nll["split"] < nll["spread"]
    # The same along dim 1 (b's cells matched into a) on the transposed logits.
    assert torch.isclose(match_nll(exact.transpose(1, 2), flow, mask, (4, 4), dim=1), nll["exact"])


def test_train_cli_sets_model_options_and_refuses_bad_ones(pairs, tmp_path, run_cli):
    def cli(*args):
        return run_cli("train", "--pairs", pairs, "--config", "tiny", "--size", "64", *args)

    r = cli("--out", str(tmp_path / "run"), "--model-option", "dim=16", "--model-option", "ffn_dim=16",
            "--model-option", "layers=IC", "--seed", "3")
    assert r.returncode == 0, r.stderr
    recipe = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert (recipe["model_conf"]["dim"], recipe["model_conf"]["layers"], recipe["seed"]) == (16, "IC", 3)
    for option, message in (("dimm=16", "unknown segswap model option(s) dimm"), ("dim", "expected KEY=VALUE")):
        r = cli("--out", str(tmp_path / "bad"), "--model-option", option)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
        assert not (tmp_path / "bad").exists()
    for option in (("--model-option", "dim=8"), ("--seed", "4")):
        r = cli("--out", str(tmp_path / "run"), "--resume", *option)
        assert r.returncode == 2 and "a resumed run keeps the options" in r.stderr


def test_a_grown_pairs_folder_appends_to_its_cache(tmp_path, fake_synth, monkeypatch):
    """Item 14 of issue 21 (data loss): growing a synth folder and training again overwrote shard-00000
    with the new pairs, listed it twice in cache.json and lost the first pairs' features."""
    from segswap.synth import cache as cache_module

    monkeypatch.setattr(cache_module, "SHARD_SIZE", 8)
    folder = fake_synth(tmp_path / "pairs", n=30)
    manifest = (folder / "manifest.jsonl").read_text()
    (folder / "manifest.jsonl").write_text("".join(manifest.splitlines(keepends=True)[:20]))
    root = build_cache(folder, "efficientnet-lite2", 64, show_progress=False)
    first = FeatureCache([root]).get(range(20), keys=("feats_a",))["feats_a"]
    (folder / "manifest.jsonl").write_text(manifest)
    build_cache(folder, "efficientnet-lite2", 64, show_progress=False)
    shards = json.loads((root / "cache.json").read_text())["shards"]
    assert len(shards) == len(set(shards)) == 5  # 8 + 8 + 4, then 8 + 2
    cache = FeatureCache([root])
    assert sorted(cache.ids) == sorted(f"pairs/{i:06d}" for i in range(30))
    assert torch.equal(cache.get(range(20), keys=("feats_a",))["feats_a"], first)


def test_a_shard_written_by_a_killed_run_is_replaced_not_listed_twice(tmp_path, fake_synth):
    folder = fake_synth(tmp_path / "pairs", n=4)
    root = build_cache(folder, "efficientnet-lite2", 64, show_progress=False)
    index = json.loads((root / "cache.json").read_text())
    (root / "cache.json").write_text(json.dumps({**index, "shards": []}))  # killed before recording the shard
    build_cache(folder, "efficientnet-lite2", 64, show_progress=False)
    assert json.loads((root / "cache.json").read_text())["shards"] == ["shard-00000"]
    assert len(FeatureCache([root])) == 4


def test_a_tail_run_started_from_frozen_feature_weights_keeps_them_and_the_pretrained_tail(pairs, tmp_path):
    small = {"dim": 16, "heads": 2, "ffn_dim": 16, "layers": "ICI"}
    train([pairs], tmp_path / "frozen", config="tiny", show_progress=False, overrides={**TINY, "model_conf": small})
    export(tmp_path / "frozen", tmp_path / "frozen.safetensors")
    still = {"lr": 0.0, "lr_final": 0.0, "hard_negatives": {"lr": 0.0}}
    tail = {**small, "tail_blocks": 2}
    # the tail must continue from the cut the frozen model's backbone is the end of
    with pytest.raises(SegswapError, match="--init weights hold"):
        train([pairs], tmp_path / "wrong", config="tiny", show_progress=False, init=tmp_path / "frozen.safetensors",
              overrides={**TINY, **still, "backbone": "efficientnet-lite0", "model_conf": small})
    train([pairs], tmp_path / "tail", config="tiny", show_progress=False, init=tmp_path / "frozen.safetensors",
          overrides={**TINY, **still, "backbone": "efficientnet-lite2-block12", "model_conf": tail})
    export(tmp_path / "tail", tmp_path / "tail.safetensors")
    frozen = segswap.load(weights=tmp_path / "frozen.safetensors").model.state_dict()
    started = segswap.load(weights=tmp_path / "tail.safetensors").model
    assert all(torch.equal(frozen[k], v) for k, v in started.state_dict().items() if not k.startswith("tail."))
    pretrained = segswap.models.tail.BackboneTail("efficientnet-lite2", 2).state_dict()
    assert all(torch.equal(pretrained[k], v) for k, v in started.tail.state_dict().items())


def test_a_run_started_from_exported_weights_begins_with_their_tensors(pairs, tmp_path, run_cli):
    train([pairs], tmp_path / "first", config="tiny", show_progress=False, overrides=TINY)
    export(tmp_path / "first", tmp_path / "first.safetensors")
    # lr 0: the optimiser moves nothing, so the second run ends where --init put it
    train([pairs], tmp_path / "second", config="tiny", show_progress=False, overrides={**TINY, "lr": 0.0, "lr_final": 0.0, "hard_negatives": {"lr": 0.0}},
          init=tmp_path / "first.safetensors")
    export(tmp_path / "second", tmp_path / "second.safetensors")
    first, second = (segswap.load(weights=tmp_path / f"{n}.safetensors").model.state_dict() for n in ("first", "second"))
    assert all(torch.equal(first[k], second[k]) for k in first)
    recipe = json.loads((tmp_path / "second" / "recipe.json").read_text())
    assert recipe["init"]["sha256"] == segswap.models.weights.weights_digest(tmp_path / "first.safetensors")

    r = run_cli("train", "--pairs", pairs, "--config", "tiny", "--size", "64", "--out", tmp_path / "bad",
                "--init", tmp_path / "first.safetensors", "--model-option", "dim=16")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "differ from the recipe's model in dim" in r.stderr, r.stderr
    assert not (tmp_path / "bad").exists()


def test_the_shipped_model_is_defined_once():
    """models.SegSwapTransformer.default_conf is the one source: the default recipe trains exactly it, the
    shipped weights hold it, and the ablations (measured without the grid context) say so themselves."""
    from segswap.models import SegSwapTransformer
    from segswap.shipped import shipped_weights_path

    default = get_recipe("default")["model_conf"]
    assert default == {k: SegSwapTransformer.default_conf[k] for k in default}
    shipped = segswap.load(weights=shipped_weights_path("segswap")).model.conf
    assert {k: shipped[k] for k in default} == default
    assert get_recipe("plain")["model_conf"]["context_convs"] == 0 == get_recipe("wide")["model_conf"]["consensus_radius"]
    assert get_recipe("finetune")["model_conf"]["context_convs"] == 1


def test_a_folder_without_pairs_is_refused_before_the_run_folder_is_claimed(tmp_path):
    """Training on a folder that holds no pairs is one line, and the run folder stays free for the next try
    (it used to keep a recipe.json, and the retry was told to --resume)."""
    empty = tmp_path / "pairs"
    empty.mkdir()
    for _ in range(2):
        with pytest.raises(SegswapError, match="manifest"):
            train([empty], tmp_path / "run", config="tiny", show_progress=False)
        assert not (tmp_path / "run").exists()
