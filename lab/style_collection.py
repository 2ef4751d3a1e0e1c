"""A development collection with a change of style (issue 39 item 3): the same scenes as photographs and as
depictions, with their truth, for `segswap eval details` (detail retrieval) and `segswap eval discover`.

    .venv/bin/python lab/style_collection.py --out W/style_dev

Scenes (from ../shared/data/eval only): eight sample-pair photographs (one image of each pair) and eight 2×2
mosaics of MSRC photographs (each photograph used once). Each scene is drawn three times, each a different
crop of it (85–100 % of each side, so no two are aligned): once as a photograph, and as two of line
engraving, halftone, ink wash, watercolour, pen on aged paper and a painting's palette and texture
(band AdaIN from the two paintings of train/styles, the style references). Queries: in each drawing, one
region of the scene (a mosaic's photograph, or the central 40 % of a sample photograph) with its box; its
targets: the same region in the scene's two other drawings. Pairs (for `eval discover`): the three
drawings of a scene, two by two, kind "depiction" (every pair crosses a change of drawing).

With ``--details`` (issue 39's detail across a depiction, with room above today's retrieval): each scene's
query is a textured square 15 % of its long side, and each view a 60–100 % crop that keeps it (so the detail
comes at up to 1.7× another view's size).

    .venv/bin/python lab/style_collection.py --details --out W/style_detail_dev
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from segswap.synth.conditions import apply_condition
from segswap.synth.style import band_adain

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EVAL = DATA / "eval"
PAIR_SCENES = ("aero1.jpg", "leuvenA.jpg", "motorcycle_left.png", "Blender_Suzanne1.jpg", "basketball1.png",
               "rubberwhale1.png", "box_in_scene.png", "graf1.png")
MOSAIC_GROUPS = ("cow", "plane", "car", "bike", "sheep", "chair", "boat", "flower", "sign", "bird", "face", "dog")
DRAWINGS = ("line_engraving", "halftone", "ink_wash", "watercolour", "pen_on_aged_paper", "painting")


def read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def scenes(rng: np.random.Generator) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """(RGB, the query region's box) of each scene."""
    found = []
    for name in PAIR_SCENES:
        image = read(EVAL / "pairs" / name)
        h, w = image.shape[:2]
        found.append((image, (int(0.3 * w), int(0.3 * h), int(0.7 * w), int(0.7 * h))))
    photos = [p for g in MOSAIC_GROUPS for p in sorted((EVAL / "msrc_coseg" / "images" / g).glob("*.png"))]
    rng.shuffle(photos)
    for k in range(8):
        tiles = [cv2.resize(read(p), (320, 213), interpolation=cv2.INTER_AREA) for p in photos[4 * k:4 * k + 4]]
        corner = int(rng.integers(4))
        box = (320 * (corner % 2), 213 * (corner // 2), 320 * (corner % 2) + 320, 213 * (corner // 2) + 213)
        found.append((np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])]), box))
    return found


def detail_box(image: np.ndarray, rng: np.random.Generator, side: float) -> tuple[int, int, int, int]:
    """A square window ``side`` × the scene's long side, the most textured (variance of the Laplacian) of 20
    random places away from the borders: a detail worth looking for, not a patch of sky."""
    h, w = image.shape[:2]
    size = int(side * max(h, w))
    energy = np.abs(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))
    best = None
    for _ in range(20):
        x0 = int(rng.integers(int(0.2 * w), int(0.8 * w) - size))
        y0 = int(rng.integers(int(0.2 * h), int(0.8 * h) - size))
        value = float(energy[y0:y0 + size, x0:x0 + size].mean())
        if best is None or value > best[0]:
            best = (value, (x0, y0, x0 + size, y0 + size))
    return best[1]


def drawn(image: np.ndarray, kind: str, rng: np.random.Generator, styles: list[np.ndarray]) -> np.ndarray:
    if kind == "photograph":
        return image
    if kind == "painting":
        return band_adain(image, rng, styles)[0]
    return apply_condition(image, kind, rng)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=391)
    parser.add_argument("--details", action="store_true",
                        help="queries a textured square 15 %% of the scene's long side, views cropped to 60-100 %% of it")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    styles = [read(p) for p in sorted((DATA / "train" / "styles").iterdir())]
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    queries, pairs = [], []
    low = 0.6 if args.details else 0.85
    for s, (image, box) in enumerate(scenes(rng)):
        if args.details:
            box = detail_box(image, rng, 0.15)
        kinds = ["photograph", *rng.choice(DRAWINGS, 2, replace=False)]
        views = []
        for kind in kinds:
            h, w = image.shape[:2]
            cw, ch = int(w * rng.uniform(low, 1.0)), int(h * rng.uniform(low, 1.0))
            if args.details:  # the crop keeps the whole detail
                cw, ch = max(cw, box[2] - box[0] + 1), max(ch, box[3] - box[1] + 1)
                x0 = int(rng.integers(max(0, box[2] - cw), min(box[0], w - cw) + 1))
                y0 = int(rng.integers(max(0, box[3] - ch), min(box[1], h - ch) + 1))
            else:
                x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = image[y0:y0 + ch, x0:x0 + cw]
            factor = 640 / max(cw, ch)
            out = cv2.resize(crop, (round(cw * factor), round(ch * factor)), interpolation=cv2.INTER_AREA
                             if factor < 1 else cv2.INTER_LINEAR)
            out = drawn(out, kind, rng, styles)
            name = f"scene{s:02d}_{kind}.png"
            cv2.imwrite(str(args.out / "images" / name), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            b = [(box[0] - x0) * factor, (box[1] - y0) * factor, (box[2] - x0) * factor, (box[3] - y0) * factor]
            b = [int(np.clip(b[0], 0, out.shape[1] - 1)), int(np.clip(b[1], 0, out.shape[0] - 1)),
                 int(np.clip(b[2], 1, out.shape[1])), int(np.clip(b[3], 1, out.shape[0]))]
            views.append((name, b, "copy" if kind == "photograph" else "depiction"))
        for k, (name, b, kind) in enumerate(views):
            queries.append({"image": name, "box": b, "kind": kind,
                            "targets": [{"image": n, "box": bb, "kind": kk} for j, (n, bb, kk) in enumerate(views) if j != k]})
        pairs += [{"a": views[i][0], "b": views[j][0], "kind": "depiction"} for i in range(3) for j in range(i + 1, 3)]
    (args.out / "truth.json").write_text(json.dumps({"queries": queries, "pairs": pairs,
                                                     "boxes": {q["image"]: [q["box"]] for q in queries}}, indent=1))
    print(f"{len(queries)} images, {len(queries)} queries, {len(pairs)} pairs → {args.out}")


if __name__ == "__main__":
    main()
