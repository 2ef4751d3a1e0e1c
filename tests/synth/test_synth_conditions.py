"""Condition transforms: deterministic for a seed, no pixel moved, ground truth untouched, listed in
meta.json and on the contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from segswap.errors import SegswapError
from segswap.synth import conditions, generate
from segswap.synth.preview import describe_image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A textured background with one dark disc off centre: the one strong structure whose position a
    moved pixel would shift."""
    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:128, 0:160]
    base = np.stack([120 + x * 0.5, 150 + y * 0.4, 180 - x * 0.3], -1) + rng.normal(0, 6, (128, 160, 3))
    base[(x - DISC_CENTRE[0]) ** 2 + (y - DISC_CENTRE[1]) ** 2 <= DISC_RADIUS**2] = (40, 60, 30)
    return np.clip(base, 0, 255).astype(np.uint8)


DISC_CENTRE, DISC_RADIUS = (100, 55), 22


def _best_disc_offset(image: np.ndarray, params: dict | None = None) -> np.ndarray:
    """Where the disc is in ``image``: the shift (up to 3 px each way) of the disc mask that gives the
    largest tone difference between the disc and a ring around it, whatever the polarity. Pixels near
    the lamps and windows a night or dusk added (listed in ``params``) are left out: they are new light,
    not moved content. A transform that moves no pixel leaves the disc where it finds it in the input."""
    # Smoothed: night leaves the disc a few grey levels from its ring, under sensor noise.
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    y, x = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    lit = np.zeros(grey.shape, bool)
    for light in (params or {}).get("lights", []):
        if "lamp" in light:
            cx, cy, radius = light["lamp"]
            lit |= np.hypot(x - cx, y - cy) < 20 * radius  # the halo is faint there but the night is darker
        else:
            cx, cy, w, h = light["window"]
            lit |= (np.abs(x - cx) < w / 2 + 4) & (np.abs(y - cy) < h / 2 + 4)
    best, where = -1.0, None
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            r = np.hypot(x - DISC_CENTRE[0] - dx, y - DISC_CENTRE[1] - dy)
            inside, ring = (r <= DISC_RADIUS) & ~lit, (r > DISC_RADIUS) & (r <= DISC_RADIUS + 6) & ~lit
            if inside.sum() < 50 or ring.sum() < 50:
                continue
            contrast = abs(float(grey[inside].mean() - grey[ring].mean()))
            if contrast > best:
                best, where = contrast, (dx, dy)
    return None if where is None else np.array(where)


@pytest.mark.parametrize("name", list(conditions.CONDITIONS))
def test_condition_is_deterministic_and_moves_no_pixel(name, photo):
    out, params = conditions.apply_condition(photo, name, np.random.default_rng(7))
    again, params_again = conditions.apply_condition(photo, name, np.random.default_rng(7))
    other, _ = conditions.apply_condition(photo, name, np.random.default_rng(8))
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out, again) and json.dumps(params) == json.dumps(params_again)
    assert not np.array_equal(out, other), "the seed decides the draws"
    assert params["name"] == name and params["group"] == conditions.group_of(name)
    assert np.abs(out.astype(int) - photo).mean() > 5, "the condition changes the look"
    drawn = _best_disc_offset(photo)
    for seed in range(6):
        moved, drawn_params = conditions.apply_condition(photo, name, np.random.default_rng(seed))
        found = _best_disc_offset(moved, drawn_params)
        if found is None:  # lamps cover the disc's edge this time: nothing to measure
            continue
        # A depiction redraws the edge with strokes or screen dots (a pitch of 3-6 px), which may land
        # up to two pixels off: an eighth of a feature cell, where the ground truth lives.
        tolerance = 0 if name in conditions.PHOTOMETRIC else 2
        assert np.abs(found - drawn).max() <= tolerance, f"content stays where it was (seed {seed})"


def test_parse_conditions():
    assert conditions.parse_conditions("all") == tuple(conditions.CONDITIONS)
    assert conditions.parse_conditions("haze,light") == ("night", "dusk", "haze")
    assert conditions.parse_conditions(None) == ()
    with pytest.raises(ValueError, match="unknown condition 'fog'"):
        conditions.parse_conditions("fog")


def _run(folders, out: Path, n: int, **kwargs):
    yolo, photos = folders
    return generate([yolo], photos, out, n, size=160, workers=1, progress=False, seed=3, **kwargs)


@pytest.fixture
def folders(texture_yolo, photos):
    return texture_yolo, photos


def test_conditions_leave_the_ground_truth_and_the_other_image_exact(folders, tmp_path):
    plain, conditioned = tmp_path / "plain", tmp_path / "conditioned"
    _run(folders, plain, 4)
    _run(folders, conditioned, 4, conditions=tuple(conditions.CONDITIONS), condition_rate=1.0)
    config = json.loads((conditioned / "config.json").read_text())
    assert config["settings"]["conditions"] == list(conditions.CONDITIONS)
    assert "conditions" not in json.loads((plain / "config.json").read_text())["settings"]
    for pair in sorted(p for p in plain.iterdir() if p.name.isdigit()):
        other = conditioned / pair.name
        condition = json.loads((other / "meta.json").read_text())["condition"]
        assert condition["name"] in conditions.CONDITIONS and condition["image"] in "ab"
        for name in ("gt.npz", "mask_a.png", "mask_b.png"):
            assert (pair / name).read_bytes() == (other / name).read_bytes(), name
        untouched = "ab".replace(condition["image"], "")
        assert (pair / f"{untouched}.jpg").read_bytes() == (other / f"{untouched}.jpg").read_bytes()
        assert (pair / f"{condition['image']}.jpg").read_bytes() != (other / f"{condition['image']}.jpg").read_bytes()


def test_same_seed_same_conditioned_pairs(folders, tmp_path):
    for out in (tmp_path / "one", tmp_path / "two"):
        _run(folders, out, 3, conditions=("night", "halftone"), condition_rate=0.7)
    files = lambda out: {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}  # noqa: E731
    assert files(tmp_path / "one") == files(tmp_path / "two")


def test_one_pair_gets_the_same_side_under_every_condition(folders, tmp_path):
    sides = {}
    for name in ("night", "ink_wash"):
        _run(folders, tmp_path / name, 3, conditions=(name,), condition_rate=1.0)
        sides[name] = [json.loads((tmp_path / name / f"{i:06d}" / "meta.json").read_text())["condition"]["image"]
                       for i in range(3)]
    assert sides["night"] == sides["ink_wash"]


@pytest.mark.parametrize("bad", [{"conditions": ("fog",)}, {"condition_rate": 1.5}])
def test_bad_condition_options_are_user_errors(folders, tmp_path, bad):
    with pytest.raises(SegswapError):
        _run(folders, tmp_path / "out", 1, **bad)
    assert not (tmp_path / "out").exists(), "refused before any work"


def test_cli_refuses_an_unknown_condition_in_one_line(folders, tmp_path, run_cli):
    yolo, photos = folders
    result = run_cli("synth", "--segments", yolo, "--backgrounds", photos, "--out", tmp_path / "out", "-n", "1",
                     "--conditions", "night,fog")
    assert result.returncode == 2 and "unknown condition 'fog'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_contact_sheet_names_the_condition():
    meta = {"a": {"style": {"kind": "oil"}}, "b": {"style": None}, "condition": {"name": "night", "image": "b"}}
    assert describe_image("000004", meta, "a") == "000004 a: oil"
    assert describe_image("000004", meta, "b") == "000004 b: night"
    assert describe_image("000005", {"a": {"style": None}}, "a") == "000005 a: photo"
