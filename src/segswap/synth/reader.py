"""The read side of the synthetic-pair format (docs/formats.md; :mod:`segswap.synth.writer` writes it).

Everything that uses `segswap synth` folders reads them here: the feature cache, the negatives drawn
from it, ``segswap eval synthetic`` and the contact sheet. A folder holds ``config.json``,
``manifest.jsonl`` and one directory per pair with ``a.jpg``, ``b.jpg``, ``mask_a.png``, ``mask_b.png``,
``gt.npz`` and ``meta.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SegswapError
from ..io import load_image

#: The ground truth in gt.npz: token masks (h×w) and flows (h×w×2, (x, y) in [0, 1] of the other image).
TRUTH_KEYS = ("mask_a", "mask_b", "flow_ab", "flow_ba")


def pairs_size(pairs_dirs) -> int:
    """The image size the folders' pairs were made at (``config.json``), the same for all of them."""
    sizes = set()
    for folder in map(Path, pairs_dirs):
        config = folder / "config.json"
        if not config.is_file():
            raise SegswapError(f"{folder}: no config.json (is it a `segswap synth` output folder?)")
        sizes.add(int(json.loads(config.read_text())["settings"]["size"]))
    if len(sizes) != 1:
        raise SegswapError(f"the pair folders were made at different sizes ({sorted(sizes)}); evaluate them one size at a time")
    return sizes.pop()


def listed_pairs(pairs_dir: Path) -> list[dict]:
    """The manifest's entries (``id``, ``kind``, ...) in order, positives and negatives."""
    manifest = Path(pairs_dir) / "manifest.jsonl"
    if not manifest.is_file():
        raise SegswapError(f"{pairs_dir}: no manifest.jsonl (is it a `segswap synth` output folder?)")
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def positive_pairs(pairs_dir: Path) -> list[dict]:
    """The positive pairs listed in the manifest whose folders are complete."""
    pairs_dir = Path(pairs_dir)
    entries = listed_pairs(pairs_dir)
    config_path = pairs_dir / "config.json"
    if config_path.is_file() and json.loads(config_path.read_text()).get("format_version", 0) < 2:
        raise SegswapError(f"{pairs_dir}: made by segswap synth format 1, whose token masks miss a third of the "
                           "object cells; make the pairs again with this version")
    return [e for e in entries if e.get("kind", "positive") == "positive" and (pairs_dir / e["id"] / "gt.npz").is_file()]


def read_images(pair_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images a and b of a pair, RGB uint8."""
    return load_image(Path(pair_dir) / "a.jpg"), load_image(Path(pair_dir) / "b.jpg")


def read_masks(pair_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The pair's full-resolution object masks of a and b, float in [0, 1]."""
    return tuple(load_image(Path(pair_dir) / name)[..., 0] / 255.0 for name in ("mask_a.png", "mask_b.png"))


def read_truth(pair_dir: Path) -> dict[str, np.ndarray]:
    """The pair's ground truth on the token grid (:data:`TRUTH_KEYS`), float32."""
    with np.load(Path(pair_dir) / "gt.npz") as gt:
        return {key: gt[key].astype(np.float32) for key in TRUTH_KEYS}


def read_meta(pair_dir: Path) -> dict:
    """The pair's ``meta.json`` (how each image was made), or {} for a pair without one."""
    path = Path(pair_dir) / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def source_photos(pair_dir: Path) -> list[list[str]]:
    """Per image (a, b): the photos it is made of (background and object source), so that negatives
    never pair two images that show the same photo."""
    meta = read_meta(pair_dir)
    if not meta:
        return [[], []]
    return [[str(meta[side].get(k) if k == "source" else meta[side].get(k, {}).get("path")) for k in ("background", "source")]
            for side in ("a", "b")]


def pasted_classes(pair_dirs) -> list[tuple[frozenset, frozenset]]:
    """Per pair: the classes of the objects pasted in a and in b (visible on the canvas), from each
    pair's meta.json. Older synth folders do not record ``class``: for YOLO-seg sources it is read back
    from the label line the segment id names. Unknown classes are left out."""
    labels_cache: dict[Path, list[str]] = {}

    def class_of(side: dict, obj: dict) -> str:
        if obj.get("class"):
            return obj["class"]
        image, _, line = obj["segment"].rpartition(":")
        source = Path(side.get("source") or "")
        if not line.isdigit() or "images" not in source.parts:
            return ""
        parts = list(source.parts)
        parts[len(parts) - 1 - parts[::-1].index("images")] = "labels"
        label_file = Path(*parts).with_suffix(".txt")
        if label_file not in labels_cache:
            labels_cache[label_file] = label_file.read_text().splitlines() if label_file.is_file() else []
        lines = labels_cache[label_file]
        number = int(line)
        return lines[number - 1].split()[0] if 0 < number <= len(lines) and lines[number - 1].strip() else ""

    classes = []
    for pair_dir in pair_dirs:
        meta = read_meta(pair_dir)
        classes.append(tuple(frozenset(c for c in (class_of(meta[s], o) for o in meta[s].get("objects", []) if o.get("on_canvas", True)) if c)
                             if s in meta else frozenset() for s in ("a", "b")))
    return classes


def pasted_segments(pair_dirs) -> list[tuple[frozenset, frozenset]]:
    """Per pair: the segments (source image and object, e.g. ``train2017/000000000529.jpg:3``) pasted
    in a and in b and visible on the canvas, from each pair's meta.json. A segment in both images of
    one pair and in image a of another pair is one object seen three times."""
    segments = []
    for pair_dir in pair_dirs:
        meta = read_meta(pair_dir)
        segments.append(tuple(frozenset(o["segment"] for o in meta[s].get("objects", []) if o.get("on_canvas", True) and "segment" in o)
                              if s in meta else frozenset() for s in ("a", "b")))
    return segments
