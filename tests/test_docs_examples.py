"""The examples users copy run as written: every command of the quick starts (README, the docs' home page)
and every Python block of the pages a user starts from (README, home page, guide), on the package's demo
images in place of the placeholder names (A.jpg, PHOTOS, IDX, ...)."""

from __future__ import annotations

import re
import shlex
import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(str(files("segswap") / "data"))
PAGES = [ROOT / "README.md", ROOT / "docs" / "index.md", ROOT / "docs" / "guide.md"]
#: Commands a test cannot run as a user would: a server that waits for a browser, installers.
NOT_RUN = ("segswap serve",)


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)


def quick_start_commands() -> list[str]:
    """The `segswap` lines of the README's Use section and of the docs' home page."""
    readme = (ROOT / "README.md").read_text().split("\n## Use", 1)[1]
    text = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.S)[:1] + blocks(ROOT / "docs" / "index.md", "bash"))
    return [line.split("  #", 1)[0].strip() for line in text.splitlines() if line.startswith("segswap ")]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The placeholders of the examples, as files and folders: two demo images and a third (a mirrored
    copy of the scene) in PHOTOS, which FOLDER is too."""
    root = tmp_path_factory.mktemp("examples")
    photos = root / "photos"
    photos.mkdir()
    shutil.copy(DEMO / "box.png", photos / "box.png")
    shutil.copy(DEMO / "box_in_scene.png", photos / "scene.png")
    Image.fromarray(np.asarray(Image.open(DEMO / "box_in_scene.png"))[:, ::-1].copy()).save(photos / "mirrored.png")
    names = {"A.jpg": photos / "box.png", "B.jpg": photos / "scene.png", "a.jpg": photos / "box.png",
             "b.jpg": photos / "scene.png", "engraving.jpg": photos / "box.png", "painting.jpg": photos / "scene.png",
             "QUERY.jpg": photos / "box.png", "PHOTOS": photos, "FOLDER": photos, "IDX": root / "idx",
             "MASKS": root / "masks", "result/": root / "result"}
    return root, names


def substituted(text: str, names: dict) -> str:
    for placeholder, path in sorted(names.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w/.]){re.escape(placeholder)}(?![\w])", str(path), text)
    return text


def test_the_pages_have_examples():
    assert len(quick_start_commands()) >= 8
    assert sum(len(blocks(page, "python")) for page in PAGES) >= 3


def test_every_quick_start_command_runs_as_written(workspace, run_cli):
    _, names = workspace
    ran = []
    for line in quick_start_commands():
        if line.startswith(NOT_RUN):
            continue
        args = shlex.split(substituted(line, names))[1:]
        r = run_cli(*args, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stderr[-1500:]}"
        ran.append(args[0])
    assert {"pair", "verify", "index", "search", "discover", "cosegment"} <= set(ran)
    assert (names["result/"] / "mask_a.png").is_file() and any(names["MASKS"].rglob("*.png"))


def test_every_python_example_runs_as_written(workspace):
    from segswap.collection.methods import COSEG_METHODS

    _, names = workspace
    before = set(COSEG_METHODS)
    try:
        for page in PAGES:
            for code in blocks(page, "python"):
                exec(compile(substituted(code, names), f"{page.name} example", "exec"), {})
    finally:
        for name in set(COSEG_METHODS) - before:  # the guide's example registers a method
            del COSEG_METHODS[name]
