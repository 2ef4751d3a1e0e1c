"""The examples users copy run as written.

Every ``segswap`` command in README and the documentation (the command-line reference aside, which is
generated from the commands) parses as that command's arguments; every one that needs only the reader's own
images — A.jpg, PHOTOS, IDX and the like, here the package's demo images — runs, in page order, and succeeds;
every Python block of README and the guides runs. Commands over ../shared/data, a work folder W/, a URL or
a cluster's scheduler are parsed, not run (their data or their machines are not in a test)."""

from __future__ import annotations

import re
import shlex
import shutil
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(str(files("segswap") / "data"))
DOCS = ROOT / "docs"
#: The pages, in the order a reader meets them (commands run in this order: training before its weights are used).
PAGES = [ROOT / "README.md", DOCS / "index.md", DOCS / "guide" / "two-images.md", DOCS / "guide" / "collection.md",
         DOCS / "guide" / "conditions.md", DOCS / "viewer.md", DOCS / "scale.md", DOCS / "iiif.md", DOCS / "training.md",
         DOCS / "synth.md", DOCS / "extending.md", DOCS / "formats.md"]
PYTHON_PAGES = [ROOT / "README.md", DOCS / "index.md", DOCS / "guide" / "two-images.md", DOCS / "guide" / "collection.md",
                DOCS / "extending.md"]
#: What a command may name and still run here; anything else (../shared/data, W/, URLs, /archive, a
#: scheduler) is parsed only.
NOT_HERE = re.compile(r"\.\./shared|(^|\s)W/|https?://|tcp://|/archive|IDX/iiif-cache|src/segswap/data/\w+\.json|MY_")
#: A server waits for a browser; a test cannot run it as a user does (tests/serve drive it with chromium).
#: Learning spends its budget (20 minutes) on a collection with repeats the demo images do not have
#: (tests/collection/test_collection_learning.py runs it on one, by --steps).
NOT_RUN = ("segswap serve", "segswap learn")
#: Pages whose commands work on what a test does not have: an index made from a IIIF manifest on the web
#: (tests/iiif serve one on loopback).
PARSED_ONLY = {DOCS / "iiif.md"}


def fenced(page: Path) -> list[tuple[str, str]]:
    """The page's fenced code blocks, as (language, text), in order."""
    found, language, lines = [], None, []
    for line in page.read_text().splitlines():
        if language is None and line.startswith("```"):
            language, lines = line[3:].strip(), []
        elif language is not None and line.strip() == "```":
            found.append((language, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    return found


def blocks(page: Path, language: str) -> list[str]:
    return [text for lang, text in fenced(page) if lang == language]


def commands(page: Path) -> list[str]:
    """The ``segswap`` command lines of the page's shell blocks: continuation lines joined, comments cut."""
    found = []
    for language, block in fenced(page):
        if language not in ("bash", "console", ""):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = re.split(r"\s#\s|\s{2,}#", line, maxsplit=1)[0].strip()
            if line.startswith("segswap "):
                found.append(re.sub(r"\s+", " ", line))
    return found


def all_commands() -> list[tuple[Path, str]]:
    return [(page, line) for page in PAGES for line in commands(page)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The placeholders of the examples, as files and folders: two demo images and a third (a mirrored copy
    of the scene) in PHOTOS (also FOLDER and PRINTS); SEGS, a YOLO-seg folder of the demo images with one
    polygon each, for `segswap synth`; the rest are outputs."""
    root = tmp_path_factory.mktemp("examples")
    photos = root / "photos"
    photos.mkdir()
    shutil.copy(DEMO / "box.png", photos / "box.png")
    shutil.copy(DEMO / "box_in_scene.png", photos / "scene.png")
    Image.fromarray(np.asarray(Image.open(DEMO / "box_in_scene.png"))[:, ::-1].copy()).save(photos / "mirrored.png")
    segments = root / "segments"
    (segments / "images").mkdir(parents=True)
    (segments / "labels").mkdir()
    for name, polygon in (("box", "0.05 0.05 0.95 0.05 0.95 0.95 0.05 0.95"), ("scene", "0.3 0.4 0.6 0.4 0.6 0.8 0.3 0.8")):
        shutil.copy(photos / f"{name}.png", segments / "images" / f"{name}.png")
        (segments / "labels" / f"{name}.txt").write_text(f"0 {polygon}\n")
    names = {"A.jpg": photos / "box.png", "B.jpg": photos / "scene.png", "a.jpg": photos / "box.png",
             "b.jpg": photos / "scene.png", "engraving.jpg": photos / "box.png", "painting.jpg": photos / "scene.png",
             "QUERY.jpg": photos / "box.png", "DETAIL.jpg": photos / "box.png", "PHOTOS": photos, "FOLDER": photos,
             "PRINTS": photos, "SEGS": segments, "IDX": root / "idx", "MASKS": root / "masks", "result/": root / "result",
             "DIR": root / "aligned", "PAIRS": root / "pairs", "RUN": root / "run"}
    for output in ("mine.safetensors", "verdict.json", "hits.json", "patterns.json", "patterns.html", "masks.html",
                   "patterns-data.json"):
        names[output] = root / output
    return root, names


def substituted(text: str, names: dict) -> str:
    for placeholder, path in sorted(names.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?<![\w/.]){re.escape(placeholder)}(?![\w])", str(path), text)
    return text


def test_the_pages_have_examples():
    assert len(commands(ROOT / "README.md")) >= 8  # the Use section's block
    assert len(all_commands()) >= 60
    assert sum(len(blocks(page, "python")) for page in PYTHON_PAGES) >= 6


def test_every_command_in_the_docs_parses_as_written():
    """Each command line names a command that exists, options it has, values of their types."""
    from segswap.cli import app

    group = typer.main.get_command(app)
    wrong = []
    for page, line in all_commands():
        command, name, args = group, "segswap", shlex.split(line)[1:]
        while hasattr(command, "commands"):  # a group: down to the leaf command (e.g. eval coseg)
            if not args or args[0] not in command.commands:
                wrong.append(f"{page.relative_to(ROOT)}: {line}\n    no command {args[:1]} in {name}")
                break
            name, command, args = args[0], command.commands[args[0]], args[1:]
        else:
            try:
                command.make_context(name, list(args), resilient_parsing=False)
            except Exception as err:  # typer's own click: its usage errors have format_message, --help exits
                if hasattr(err, "format_message"):
                    wrong.append(f"{page.relative_to(ROOT)}: {line}\n    {err.format_message()}")
                elif type(err).__name__ != "Exit":
                    raise
    assert wrong == [], "\n".join(wrong)


def test_every_command_that_needs_only_your_images_runs(workspace):
    """In page order, in one process (the commands share the loaded models): each exits 0."""
    from segswap.cli import app

    _, names = workspace
    runner = CliRunner()
    ran, seen = [], set()
    for page, line in all_commands():
        if line.startswith(NOT_RUN) or NOT_HERE.search(line) or page in PARSED_ONLY:
            continue
        args = shlex.split(substituted(line, names))[1:]
        if tuple(args) in seen:
            continue
        seen.add(tuple(args))
        result = runner.invoke(app, args, prog_name="segswap")
        assert result.exit_code == 0, f"{page.relative_to(ROOT)}: {line}\n{result.output[-1500:]}\n{result.exception!r}"
        ran.append(args[0])
    assert {"pair", "verify", "align", "index", "search", "discover", "cosegment", "synth", "train", "export"} <= set(ran)
    assert len(seen) >= 30
    assert (names["result/"] / "mask_a.png").is_file() and any(names["MASKS"].rglob("*.png"))
    assert names["mine.safetensors"].is_file() and (names["DIR"] / "side_by_side.png").is_file()


def test_every_python_example_runs_as_written(workspace):
    from segswap.backbone import _REGISTRY
    from segswap.collection.methods import COSEG_METHODS
    from segswap.models import ALL_MODEL_CLASSES, MODEL_CLASSES, TRAINABLE

    _, names = workspace
    registries = [COSEG_METHODS, _REGISTRY, MODEL_CLASSES, ALL_MODEL_CLASSES]
    before = [dict(registry) for registry in registries] + [set(TRAINABLE)]
    try:
        for page in PYTHON_PAGES:
            for code in blocks(page, "python"):
                exec(compile(substituted(code, names), f"{page.name} example", "exec"), {})
        assert "cell-colour" in _REGISTRY and "best-cosine" in MODEL_CLASSES and "red" in COSEG_METHODS
    finally:  # the extending page's examples register a backbone, a model and a method
        for registry, saved in zip(registries, before):
            registry.clear()
            registry.update(saved)
        TRAINABLE.clear()
        TRAINABLE.update(before[-1])
