"""A development collection for discovery (issue 37), built from ../shared/data with its truth.

    .venv/bin/python lab/discovery_collection.py --conditions W/conditions --out W/discover_dev

Writes OUT/images/** and OUT/truth.json: the true pairs (images that show the same thing) with their
kind, and, where known, the boxes of the repeated thing. What is in it:

- the 8 sample pairs of eval/pairs (box in a scene: scale; graffiti, aerial, Suzanne, stereo motorcycle:
  viewpoint; Leuven: light; two optical-flow frame pairs, rubber whale and basketball: near-duplicates);
- graffiti img2, img4, img5, img6 beside the sample pair's img1 and img3: one wall from six viewpoints;
- Corridor: 2 places far apart (frames 10 and 100 of 111), each a query frame and its reference frame
  (another pass); nearer places share the corridor's walls;
- planted copies: 12 positive pairs of `segswap eval conditions`' folders (seed 201, never trained on):
  4 without a change (copy), 4 across a depiction (line engraving, halftone, pen; depiction), 4 at night
  (light), with the pasted object's box in both images. Every condition's folder holds the same
  composites, so each condition contributes other pair numbers, and no two planted pairs share a
  background photo or a pasted segment (they would share content);
- near-duplicates: 3 MSRC photographs saved again, slightly resized and re-encoded (the same photograph
  twice);
- distractors: one image of each of 10 MSRC groups (two images of one group may show the same object).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
SAMPLE_KINDS = {("box.png", "box_in_scene.png"): "scale", ("graf1.png", "graf3.png"): "viewpoint",
                ("aero1.jpg", "aero3.jpg"): "viewpoint", ("leuvenA.jpg", "leuvenB.jpg"): "light",
                ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg"): "viewpoint",
                ("rubberwhale1.png", "rubberwhale2.png"): "near-duplicate",
                ("basketball1.png", "basketball2.png"): "near-duplicate",
                ("motorcycle_left.png", "motorcycle_right.png"): "viewpoint"}
PLANTED = {"none": "copy", "line_engraving": "depiction", "halftone": "depiction", "pen_on_aged_paper": "depiction",
           "night": "light"}
MSRC_GROUPS = ("cow", "plane", "face", "car", "bike", "sheep", "flower", "sign", "bird", "chair")


def box_of(mask_path: Path) -> list[int]:
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", type=Path, required=True, help="`segswap eval conditions`' --work folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    images = args.out / "images"
    if args.out.exists():
        shutil.rmtree(args.out)
    pairs, boxes = [], {}

    def put(source: Path, name: str) -> str:
        target = images / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        return name

    for (a, b), kind in SAMPLE_KINDS.items():
        pairs.append({"a": put(SHARED / "pairs" / a, f"pairs/{a}"), "b": put(SHARED / "pairs" / b, f"pairs/{b}"),
                      "kind": kind})
    wall = ["pairs/graf1.png", "pairs/graf3.png"] + [put(SHARED / "oxford_graf" / f"img{k}.png", f"graffiti/img{k}.png")
                                                     for k in (2, 4, 5, 6)]
    pairs += [{"a": a, "b": b, "kind": "viewpoint"} for i, a in enumerate(wall) for b in wall[i + 1:]
              if {a, b} != {"pairs/graf1.png", "pairs/graf3.png"}]
    for q in (10, 100):
        pairs.append({"a": put(SHARED / "vpr_corridor" / "query" / f"{q:07d}.jpg", f"corridor/query_{q:03d}.jpg"),
                      "b": put(SHARED / "vpr_corridor" / "ref" / f"{q:07d}.jpg", f"corridor/ref_{q:03d}.jpg"),
                      "kind": "place"})
    counts = {"none": 4, "line_engraving": 2, "halftone": 1, "pen_on_aged_paper": 1, "night": 4}
    ids = sorted(p.name for p in (args.conditions / "none").iterdir() if (p / "a.jpg").is_file())
    used, picks = set(), []
    for pid in ids:  # composites apart: no background photo or pasted segment in two of them
        meta = json.loads((args.conditions / "none" / pid / "meta.json").read_text())
        sources = {meta[side]["background"]["path"] for side in ("a", "b")}
        sources |= {o["segment"] for side in ("a", "b") for o in meta[side]["objects"]}
        if not sources & used:
            used |= sources
            picks.append(pid)
    chosen, start = {}, 0
    for condition, n in counts.items():
        chosen[condition], start = picks[start:start + n], start + n
    for condition, pids in chosen.items():
        folder = args.conditions / condition
        for pid in pids:
            a = put(folder / pid / "a.jpg", f"planted/{condition}_{pid}_a.jpg")
            b = put(folder / pid / "b.jpg", f"planted/{condition}_{pid}_b.jpg")
            boxes[a], boxes[b] = [box_of(folder / pid / "mask_a.png")], [box_of(folder / pid / "mask_b.png")]
            pairs.append({"a": a, "b": b, "kind": PLANTED[condition]})
    msrc = SHARED / "msrc_coseg" / "images"
    for k, group in enumerate(MSRC_GROUPS):
        members = sorted((msrc / group).iterdir())[:1]
        names = [put(path, f"msrc/{group}_{path.name}") for path in members]
        if k < 3:  # the same photograph again: resized by 0.9 and re-encoded as JPEG
            rgb = cv2.imread(str(members[0]))
            again = cv2.resize(rgb, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
            target = images / f"msrc/{group}_again.jpg"
            cv2.imwrite(str(target), again, [cv2.IMWRITE_JPEG_QUALITY, 85])
            pairs.append({"a": names[0], "b": f"msrc/{group}_again.jpg", "kind": "near-duplicate"})
    truth = {"pairs": pairs, "boxes": boxes,
             "about": "segswap's development collection for discovery (lab/discovery_collection.py)"}
    (args.out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"{sum(1 for _ in images.rglob('*.*'))} images, {len(pairs)} true pairs → {args.out}")


if __name__ == "__main__":
    main()
