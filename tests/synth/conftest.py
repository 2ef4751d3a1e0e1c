"""Small on-the-fly datasets for the synth tests, made in tmp_path.

The project runs pytest with ``--import-mode=importlib``, so test modules cannot import this file:
the helpers reach them through the ``kit`` fixture.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from segswap.synth.swapping import PairMaker, Settings, Sources
from segswap.synth.segments import scan_sources

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SOURCE_SIDE = 256
#: An object polygon (normalised) covering most of the source image, away from its border.
BIG_POLYGON = [(0.15, 0.2), (0.85, 0.12), (0.9, 0.8), (0.5, 0.9), (0.1, 0.75)]
SMALL_POLYGON = [(0.55, 0.55), (0.95, 0.6), (0.9, 0.95), (0.6, 0.9)]


def coordinate_texture(side: int = SOURCE_SIDE) -> np.ndarray:
    """RGB image whose red and green encode x and y: the colour of a pixel says where it came from."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    blue = ((x // 16 + y // 16) % 2) * 120 + 60
    return np.stack([x * 255 / (side - 1), y * 255 / (side - 1), blue], axis=-1).round().astype(np.uint8)


def decode_texture(rgb: np.ndarray, side: int = SOURCE_SIDE) -> np.ndarray:
    """Source coordinates (N, 2) from colours (N, 3) of :func:`coordinate_texture`."""
    return rgb[:, :2].astype(np.float64) * (side - 1) / 255


def save_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def yolo_line(polygon, cls: int = 0) -> str:
    return " ".join([str(cls)] + [f"{v:.5f}" for pt in polygon for v in pt])


def make_yolo(root: Path, images: dict[str, np.ndarray], labels: dict[str, str]) -> Path:
    for name, rgb in images.items():
        save_rgb(root / "images" / "train" / f"{name}.png", rgb)
    for name, text in labels.items():
        path = root / "labels" / "train" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def make_photos(root: Path, count: int, seed: int = 0, side: int = 200) -> Path:
    """Smooth random colour fields, green/blue-ish so magenta objects stand out."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        small = rng.uniform(0, 1, (6, 6, 3)) * [60, 200, 160]
        big = cv2.resize(small.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
        noise = rng.normal(0, 6, (side, side, 3))
        save_rgb(root / f"photo{k}.png", np.clip(big + noise + [0, 30, 40], 0, 255).astype(np.uint8))
    return root


def maker(segment_dir: Path, photo_dir: Path, seed: int = 0, styles: list[str] | None = None, **settings) -> PairMaker:
    """A PairMaker over small folders, 160-px images unless told otherwise."""
    report = scan_sources([segment_dir], unsupervised=False)
    backgrounds = sorted(str(p.resolve()) for p in photo_dir.iterdir())
    settings.setdefault("size", 160)
    return PairMaker(Sources(report.sources, backgrounds, styles or []), Settings(**settings), seed)


@pytest.fixture
def texture_yolo(tmp_path: Path) -> Path:
    """Two coordinate-texture images, one object each, plus one image with two objects."""
    tex = coordinate_texture()
    return make_yolo(
        tmp_path / "yolo",
        {"t0": tex, "t1": tex[::-1].copy(), "t2": tex},
        {"t0": yolo_line(BIG_POLYGON), "t1": yolo_line(BIG_POLYGON, 3),
         "t2": yolo_line(BIG_POLYGON) + "\n" + yolo_line(SMALL_POLYGON, 1) + "\n"},
    )


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_photos(tmp_path / "photos", 4)


@pytest.fixture
def paintings(tmp_path: Path) -> Path:
    return make_photos(tmp_path / "paintings", 2, seed=7, side=120)


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules."""
    return SimpleNamespace(
        SHARED=SHARED, SOURCE_SIDE=SOURCE_SIDE, BIG_POLYGON=BIG_POLYGON, SMALL_POLYGON=SMALL_POLYGON,
        coordinate_texture=coordinate_texture, decode_texture=decode_texture, save_rgb=save_rgb,
        yolo_line=yolo_line, make_yolo=make_yolo, make_photos=make_photos, maker=maker,
    )
