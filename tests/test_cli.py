import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segswap

DATA = Path(segswap.__file__).parent / "data"


def run(*args):
    return subprocess.run([sys.executable, "-c", "from segswap.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"segswap {segswap.__version__}"


def test_backbones_lists_the_registry():
    r = run("backbones", "--json")
    assert r.returncode == 0
    names = {row["name"] for row in json.loads(r.stdout)}
    assert {"efficientnet-lite2", "efficientnet-lite0", "dinov2-s"} <= names


def test_pair_writes_the_four_files(tmp_path):
    r = run("pair", str(DATA / "box.png"), str(DATA / "box_in_scene.png"), "--out", str(tmp_path), "--model", "correlation",
            "--size", "320")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert {"score", "mask_area_a", "mask_area_b", "correspondences", "model", "backbone", "size", "view"} <= set(result)
    assert result["model"] == "correlation" and result["size"] == 320
    assert 0 <= result["mask_area_a"] <= 1 and all(len(c) == 5 for c in result["correspondences"])
    box, scene = Image.open(DATA / "box.png"), Image.open(DATA / "box_in_scene.png")
    mask_a, mask_b = Image.open(tmp_path / "mask_a.png"), Image.open(tmp_path / "mask_b.png")
    assert mask_a.size == box.size and mask_b.size == scene.size and mask_a.mode == "L"
    overlay = np.asarray(Image.open(tmp_path / "overlay.png"))
    assert overlay.shape[0] == 480 and overlay.shape[2] == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["pair", "missing.png", "{box}", "--out", "{out}", "--model", "correlation"], "no such file"),
        (["pair", "{text}", "{box}", "--out", "{out}", "--model", "correlation"], "not an image"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--size", "100"], "multiple of 16"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--backbone", "vgg"], "unknown backbone"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--weights", "{text}"], "not a safetensors"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "nope"], "unknown pair model"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--scales", "1,big"], "--scales takes numbers"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--scales", "0,1"], "scales must be between"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, args, message):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    fill = {"box": str(DATA / "box.png"), "out": str(tmp_path / "o"), "text": str(text)}
    r = run(*[a.format(**fill) for a in args])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0].lower(), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_option_is_a_usage_error_not_a_traceback(tmp_path):
    r = run("pair", "--frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
