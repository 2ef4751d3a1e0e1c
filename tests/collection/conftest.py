"""Small synthetic collections with planted repeats, drawn with numpy/cv2, and a shared matcher.

The project runs pytest with ``--import-mode=importlib``, so test modules cannot import this file:
the helpers reach them through the ``kit`` fixture.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import segswap

#: Model input size for the tests: small grids keep the whole collection suite fast.
SIZE = 224


@pytest.fixture(scope="session")
def matcher():
    """The training-free matcher at the tests' small size, on the backbone a new index is built with."""
    from segswap.collection.update import default_index_backbone

    return segswap.load("correlation", size=SIZE, backbone=default_index_backbone())


@pytest.fixture(scope="session")
def invoke_cli():
    """Run a ``segswap`` command in this process (the backbone stays loaded); returns click's Result."""
    from typer.testing import CliRunner

    from segswap.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="session")
def kit():
    """The helpers below, for test modules."""
    return SimpleNamespace(SIZE=SIZE, clutter=clutter, planted_object=planted_object, paste=paste, save=save,
                           planted_group=planted_group, planted_repeats=planted_repeats)


@pytest.fixture(scope="session")
def repeats(tmp_path_factory):
    """An index of :func:`planted_repeats` (seed 0) and, per object, where it was pasted."""
    from segswap.collection.update import update_index

    root = tmp_path_factory.mktemp("repeats")
    _, truth = planted_repeats(root / "images", seed=0)
    index, _ = update_index(root / "images", root / "idx", size=SIZE, show_progress=False)
    return index, truth


def clutter(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A busy RGB background: smooth colour noise under random ellipses, boxes and lines."""
    low = rng.integers(0, 256, (max(2, height // 32), max(2, width // 32), 3)).astype(np.uint8)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(14):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.integers(3)
        if kind == 0:
            axes = (int(rng.integers(6, width // 5)), int(rng.integers(6, height // 5)))
            cv2.ellipse(image, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        elif kind == 1:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(8, 50)), y + int(rng.integers(8, 50))), colour, -1)
        else:
            cv2.line(image, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour, int(rng.integers(1, 5)))
    return image


def planted_object(seed: int, side: int, pattern: str = "stripes") -> tuple[np.ndarray, np.ndarray]:
    """A distinctive object (RGB) and its elliptic 0/1 mask, ``side`` px square: clutter of its own
    under a pattern no background has — "stripes" (diagonal), "rings" (concentric) or "text" — or, "plain",
    none (objects of different seeds then share no structure a keypoint matcher could pair)."""
    rng = np.random.default_rng(seed)
    texture = clutter(rng, side, side)
    colour = lambda: tuple(int(c) for c in rng.integers(0, 256, 3))
    if pattern == "stripes":
        for k in range(0, 2 * side, max(4, side // 10)):
            cv2.line(texture, (k, 0), (0, k), colour(), 2)
    elif pattern == "rings":
        for radius in range(side // 2, 2, -max(3, side // 14)):
            cv2.circle(texture, (side // 2, side // 2), radius, colour(), 2)
    elif pattern == "text":
        for row, word in enumerate(("SEG", "SWAP")):
            cv2.putText(texture, word, (2, (row + 1) * side // 2 - 6), cv2.FONT_HERSHEY_SIMPLEX, side / 110, colour(), 2)
    mask = np.zeros((side, side), np.uint8)
    cv2.ellipse(mask, (side // 2, side // 2), (side // 2 - 1, int(side * 0.4)), 0, 0, 360, 1, -1)
    return texture, mask


def paste(image: np.ndarray, obj: np.ndarray, mask: np.ndarray, x: int, y: int) -> np.ndarray:
    out = image.copy()
    h, w = mask.shape
    region = out[y:y + h, x:x + w]
    region[mask > 0] = obj[mask > 0]
    return out


def save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def planted_group(folder: Path, n: int, seed: int, *, object_seed: int = 1000, side: int = 224,
                  object_side: int = 96, pattern: str = "stripes") -> tuple[list[Path], list[np.ndarray]]:
    """``n`` images of cluttered backgrounds, each with the same object pasted somewhere (often off
    centre); returns the paths and the ground-truth 0/1 masks."""
    rng = np.random.default_rng(seed)
    obj, obj_mask = planted_object(object_seed, object_side, pattern)
    paths, truths = [], []
    for i in range(n):
        height = int(rng.choice([side, side * 3 // 4]))
        background = clutter(rng, height, side)
        x, y = int(rng.integers(0, side - object_side)), int(rng.integers(0, height - object_side))
        truth = np.zeros((height, side), np.uint8)
        truth[y:y + object_side, x:x + object_side] = obj_mask
        paths.append(save(folder / f"img{i:02d}.png", paste(background, obj, obj_mask, x, y)))
        truths.append(truth)
    return paths, truths


def planted_repeats(folder: Path, seed: int, *, copies: int = 5, plain: int = 6, side: int = 224,
                    object_side: int = 80) -> tuple[list[Path], dict[str, list[tuple[int, Path, tuple[int, int, int, int]]]]]:
    """Two different objects, each pasted into ``copies`` images, among ``plain`` images without either.

    Returns all paths and, per object ("A", "B"), ``(index, path, box)`` of the images holding it.
    """
    rng = np.random.default_rng(seed)
    objects = {"A": planted_object(2000, object_side, "rings"), "B": planted_object(3000, object_side, "text")}
    paths, truth = [], {"A": [], "B": []}
    kinds = ["A"] * copies + ["B"] * copies + [None] * plain
    for i in rng.permutation(len(kinds)):
        kind = kinds[i]
        image = clutter(rng, side * 3 // 4, side)
        name = folder / f"img{len(paths):02d}.png"
        if kind is not None:
            obj, mask = objects[kind]
            x, y = int(rng.integers(0, side - object_side)), int(rng.integers(0, side * 3 // 4 - object_side))
            image = paste(image, obj, mask, x, y)
            truth[kind].append((len(paths), name, (x, y, x + object_side, y + object_side)))
        paths.append(save(name, image))
    return paths, truth
