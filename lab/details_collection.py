"""A development collection of small details (issue 39): one detail, a tenth of the image's width, copied
into several images, some of them redrawn (engraving, ink wash, watercolour, pen) or relit.

    .venv/bin/python lab/details_collection.py --out W/details_dev

Writes OUT/images/*.png and OUT/truth.json ({"queries": [{"image", "box", "kind", "targets": [{"image",
"box", "kind"}]}]}), the format `segswap eval details` reads. Built from ../shared/data/eval only:

- hosts: six sample-pair photographs (one image of each pair) and twelve 2×2 mosaics of MSRC photographs
  (cow, plane, car, bike, sheep, chair, boat groups; each photograph used once), each drawn under one
  condition: none (copy), dusk or night (light), line engraving, ink wash, watercolour or pen (depiction);
- details: eight objects cut by their ground-truth masks (MSRC face, sign, flower, cat, dog, bird), the box
  of the sample pair "box" and a window of graffiti img2; each is pasted into three hosts at 8–12 % of the
  host's width (a small rotation, its own scale) before the host's condition is drawn, so a depiction
  redraws the detail with the rest;
- six hosts receive nothing: distractors.

Each planted copy is a query (its box), the other two copies its targets (with their boxes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from segswap.synth.conditions import apply_condition

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
PAIR_HOSTS = ("aero1.jpg", "leuvenA.jpg", "motorcycle_left.png", "Blender_Suzanne1.jpg", "basketball1.png",
              "rubberwhale1.png")
MOSAIC_GROUPS = ("cow", "plane", "car", "bike", "sheep", "chair", "boat")
DETAIL_GROUPS = ("face", "sign", "flower", "cat", "dog", "bird")
HOST_CONDITIONS = ("none", "dusk", "line_engraving", "none", "ink_wash", "night", "watercolour", "none",
                   "pen_on_aged_paper")
KIND = {"none": "copy", "dusk": "light", "night": "light"}


def read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def hosts(rng: np.random.Generator) -> list[np.ndarray]:
    images = [read(EVAL / "pairs" / name) for name in PAIR_HOSTS]
    photos = [p for g in MOSAIC_GROUPS for p in sorted((EVAL / "msrc_coseg" / "images" / g).glob("*.png"))]
    rng.shuffle(photos)
    for k in range(12):
        tiles = [cv2.resize(read(p), (320, 213), interpolation=cv2.INTER_AREA) for p in photos[4 * k:4 * k + 4]]
        images.append(np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])]))
    return images


def details(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB crop, alpha mask) of each detail."""
    found = []
    for group in DETAIL_GROUPS:
        best = None
        for path in sorted((EVAL / "msrc_coseg" / "images" / group).glob("*.png")):
            truth = cv2.imread(str(EVAL / "msrc_coseg" / "groundtruth" / group / path.name), cv2.IMREAD_GRAYSCALE)
            n, labels, stats, _ = cv2.connectedComponentsWithStats((truth == 255).astype(np.uint8))
            if n < 2:
                continue
            k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            x, y, w, h, area = stats[k]
            # a compact object that fills its box and is not cut by the frame
            score = area if (x > 2 and y > 2 and x + w < truth.shape[1] - 2 and y + h < truth.shape[0] - 2
                             and 0.4 < w / h < 2.5) else 0
            if best is None or score > best[0]:
                best = (score, path, (x, y, w, h), labels == k)
        _, path, (x, y, w, h), mask = best
        found.append((read(path)[y:y + h, x:x + w], mask[y:y + h, x:x + w].astype(np.float32)))
    box = read(EVAL / "pairs" / "box.png")
    found.append((box[30:200, 60:270], np.ones((170, 210), np.float32)))
    graffiti = read(EVAL / "oxford_graf" / "img2.png")
    found.append((graffiti[200:420, 280:540], np.ones((220, 260), np.float32)))
    return found


def paste(host: np.ndarray, crop: np.ndarray, alpha: np.ndarray, occupied: list, rng: np.random.Generator):
    """Paste the detail at 8–12 % of the host's width, turned by up to 10°, where it overlaps nothing pasted."""
    H, W = host.shape[:2]
    width = int(round(W * rng.uniform(0.08, 0.12)))
    scale = width / crop.shape[1]
    angle = rng.uniform(-10, 10)
    size = (int(np.ceil(crop.shape[1] * scale * 1.3)), int(np.ceil(crop.shape[0] * scale * 1.3)))
    matrix = cv2.getRotationMatrix2D((crop.shape[1] / 2, crop.shape[0] / 2), angle, scale)
    matrix[:, 2] += (size[0] / 2 - crop.shape[1] / 2, size[1] / 2 - crop.shape[0] / 2)
    rgb = cv2.warpAffine(crop, matrix, size, flags=cv2.INTER_AREA)
    a = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR)
    a = cv2.GaussianBlur(a, (3, 3), 0)
    ys, xs = np.nonzero(a > 0.5)
    for _ in range(200):
        x0, y0 = int(rng.integers(0, W - size[0])), int(rng.integers(0, H - size[1]))
        box = [x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1]
        if all(box[2] <= b[0] - 8 or b[2] <= box[0] - 8 or box[3] <= b[1] - 8 or b[3] <= box[1] - 8 for b in occupied):
            break
    region = host[y0:y0 + size[1], x0:x0 + size[0]].astype(np.float32)
    host[y0:y0 + size[1], x0:x0 + size[0]] = (region * (1 - a[..., None]) + rgb * a[..., None]).astype(np.uint8)
    occupied.append(box)
    return box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=39)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    images, sources = hosts(rng), details(rng)
    conditions = [HOST_CONDITIONS[k % len(HOST_CONDITIONS)] for k in range(len(images))]
    # each detail into three hosts of the first eighteen − six distractors = twelve hosts, two details each
    receivers = list(range(12))
    placed: dict[int, list] = {}
    occupied: dict[int, list] = {k: [] for k in receivers}
    for d in range(len(sources)):
        # three hosts with room, no two of which already share a detail (each pair of hosts shares at most one)
        for _ in range(1000):
            chosen = [int(k) for k in rng.permutation([k for k in receivers if len(occupied[k]) < 2])[:3]]
            held = [{e for e, copies in placed.items() if any(j == k for j, _ in copies)} for k in chosen]
            if len(chosen) == 3 and all(not (held[i] & held[j]) for i in range(3) for j in range(i)):
                break
        for k in chosen:
            placed.setdefault(d, []).append((k, paste(images[k], *sources[d], occupied[k], rng)))
    out = args.out / "images"
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for k, image in enumerate(images):
        name = f"host{k:02d}_{conditions[k]}.png"
        if conditions[k] != "none":
            image, _ = apply_condition(image, conditions[k], np.random.default_rng(args.seed * 1000 + k))
        cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        names.append(name)
    kind = lambda k: KIND.get(conditions[k], "depiction")  # noqa: E731
    queries = []
    for d, copies in sorted(placed.items()):
        for k, box in copies:
            queries.append({"image": names[k], "box": box, "kind": kind(k), "detail": d,
                            "targets": [{"image": names[j], "box": b, "kind": kind(j)} for j, b in copies if j != k]})
    (args.out / "truth.json").write_text(json.dumps({"queries": queries}, indent=1))
    print(f"{len(names)} images, {len(placed)} details, {len(queries)} queries → {args.out}")


if __name__ == "__main__":
    main()
