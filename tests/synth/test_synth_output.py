"""The output folder: format, determinism by seed, and resuming after a kill."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from segswap.errors import SegswapError
from segswap.synth import generate, writer


def _run(kit, folders, out: Path, n: int, **kwargs):
    yolo, photos, paintings = folders
    kwargs.setdefault("workers", 1)
    return generate([yolo], photos, out, n, size=160, styles=paintings, progress=False, **kwargs)


@pytest.fixture
def folders(texture_yolo, photos, paintings):
    return texture_yolo, photos, paintings


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_pair_files_follow_the_format(kit, folders, tmp_path):
    out = tmp_path / "out"
    summary = _run(kit, folders, out, 4, negatives=0.25)
    assert summary.written == 4 and not summary.failed and not summary.warnings
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == ["000000", "000001", "000002", "000003"]
    for line in lines:
        assert set(line) == {"id", "index", "seed", "kind", "a", "b", "mask_a", "mask_b", "gt", "meta"}
        pair = out / line["id"]
        a = cv2.imread(str(out / line["a"]))
        mask_a = cv2.imread(str(out / line["mask_a"]), cv2.IMREAD_UNCHANGED)
        assert a.shape == (160, 160, 3) and mask_a.shape == (160, 160) and set(np.unique(mask_a)) <= {0, 255}
        with np.load(pair / "gt.npz") as gt:
            assert sorted(gt.files) == ["flow_ab", "flow_ba", "mask_a", "mask_b"]
            assert gt["mask_a"].shape == (10, 10) and gt["flow_ab"].shape == (10, 10, 2)
            assert all(gt[k].dtype == np.float32 for k in gt.files)
            assert gt["mask_a"].min() >= 0 and gt["mask_a"].max() <= 1
            if line["kind"] == "positive":
                assert (gt["mask_a"] >= 0.5).sum() >= 9 and (gt["mask_b"] >= 0.5).sum() >= 9
            else:
                assert not gt["mask_a"].any() and not mask_a.any()
        meta = json.loads((pair / "meta.json").read_text())
        assert meta["id"] == line["id"] and meta["kind"] == line["kind"]
        for side in ("a", "b"):
            assert meta[side]["background"]["path"] != meta[side]["source"]  # never the object's own image
            assert {"placement", "blend", "segment"} <= set(meta[side]["objects"][0])
        assert meta["a"]["background"]["path"] != meta["b"]["background"]["path"]
    assert {line["kind"] for line in lines} == {"positive", "negative"}


def test_same_seed_same_bytes_whatever_the_workers(kit, folders, tmp_path):
    one = _run(kit, folders, tmp_path / "one", 4, seed=5, workers=1)
    two = _run(kit, folders, tmp_path / "two", 4, seed=5, workers=2)
    assert one.written == two.written == 4
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    _run(kit, folders, tmp_path / "other", 4, seed=6)
    assert _files(tmp_path / "other")["000000/a.jpg"] != _files(tmp_path / "one")["000000/a.jpg"]


def test_workers_fall_back_to_this_process_when_the_caller_is_stdin(kit, folders, tmp_path, monkeypatch):
    # Spawned workers re-run __main__'s file; "<stdin>" is no file, and the pool used to wait forever.
    stdin_main = types.ModuleType("__main__")
    stdin_main.__file__, stdin_main.__spec__ = "<stdin>", None
    monkeypatch.setitem(sys.modules, "__main__", stdin_main)
    summary = _run(kit, folders, tmp_path / "out", 2, seed=5, workers=2)
    assert summary.written == 2
    assert any("re-import the calling script" in w for w in summary.warnings)


def test_resume_continues_without_corruption(kit, folders, tmp_path):
    whole = tmp_path / "whole"
    _run(kit, folders, whole, 5)
    part = tmp_path / "part"
    _run(kit, folders, part, 2)
    # A kill mid-write leaves a temporary directory; a kill after the rename leaves no manifest line.
    shutil.copytree(whole / "000002", part / ".tmp-000002")
    (part / ".tmp-000002" / "b.jpg").write_bytes(b"half")
    shutil.copytree(whole / "000002", part / "000002")
    lines = (part / "manifest.jsonl").read_text().splitlines()
    (part / "manifest.jsonl").write_text("\n".join(lines[:1]) + "\n")
    summary = _run(kit, folders, part, 5)
    assert summary.already_done == 3 and summary.written == 2
    assert not list(part.glob(".tmp-*"))
    assert _files(part) == _files(whole)


def test_resume_refuses_other_settings(kit, folders, tmp_path):
    out = tmp_path / "out"
    _run(kit, folders, out, 1)
    with pytest.raises(SegswapError, match="other settings"):
        _run(kit, folders, out, 1, seed=9)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(SegswapError, match="not a segswap synth folder"):
        _run(kit, folders, tmp_path / "junk", 1)


@pytest.mark.parametrize("bad", [{"size": 150}, {"negatives": 1.5}, {"blend": "smudge"}, {"workers": 0}])
def test_bad_options_are_user_errors(kit, folders, tmp_path, bad):
    yolo, photos, _ = folders
    with pytest.raises(SegswapError):
        generate([yolo], photos, tmp_path / "out", 1, progress=False, **bad)


def test_npz_bytes_do_not_depend_on_the_clock(tmp_path, monkeypatch):
    arrays = {"mask_a": np.eye(3, dtype=np.float32)}
    writer.write_npz(tmp_path / "one.npz", arrays)
    monkeypatch.setattr("time.time", lambda: 2e9)
    writer.write_npz(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz") as loaded:
        assert np.array_equal(loaded["mask_a"], arrays["mask_a"])


def test_preview_sheet(kit, folders, tmp_path):
    sheet = tmp_path / "sheet.png"
    _run(kit, folders, tmp_path / "out", 3, preview=sheet)
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] >= 200 and image.shape[1] > 400
