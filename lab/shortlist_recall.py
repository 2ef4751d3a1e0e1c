"""Does `segswap search`'s descriptor shortlist find a planted detail? Recall@K per index backbone.

A collection of 128 MSRC images (every third image, sorted); 30 details (64–160-px crops of 30 other MSRC
images, seeded) pasted each into one image of the collection at a random place. Query = the source image
with the detail's box, as `segswap search QUERY --box` runs it; the rank of the image holding the detail
in the shortlist (`CollectionIndex.descriptor_index`, before any re-ranking).

    .venv/bin/python lab/shortlist_recall.py --work /tmp/shortlist \
        --backbones efficientnet-lite2 efficientnet-lite2-block12
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from segswap.backbone import get_backbone
from segswap.collection.descriptor import pooled
from segswap.collection.search import query_pixels
from segswap.collection.update import update_index
from segswap.io import load_image, pixels_to_tensor
from segswap.io.paths import list_images

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg" / "images"
DETAILS, COLLECTION = 30, 128


def plant(work: Path, seed: int = 0) -> list[dict]:
    """Write the collection with the details pasted in; return each detail's source, box and target."""
    images = list_images(MSRC)
    collection, sources = images[::3][:COLLECTION], [p for p in images if p not in set(images[::3])]
    rng = np.random.default_rng(seed)
    targets = rng.choice(len(collection), DETAILS, replace=False)
    chosen = rng.choice(len(sources), DETAILS, replace=False)
    folder = work / "collection"
    folder.mkdir(parents=True, exist_ok=True)
    planted = {}
    for target, source in zip(targets, chosen):
        src = load_image(sources[source])
        side = int(rng.integers(64, min(161, min(src.shape[:2]))))
        y0, x0 = int(rng.integers(0, src.shape[0] - side + 1)), int(rng.integers(0, src.shape[1] - side + 1))
        dst = load_image(collection[target]).copy()
        side_d = min(side, min(dst.shape[:2]))
        py, px = int(rng.integers(0, dst.shape[0] - side_d + 1)), int(rng.integers(0, dst.shape[1] - side_d + 1))
        dst[py:py + side_d, px:px + side_d] = cv2.resize(src[y0:y0 + side, x0:x0 + side], (side_d, side_d))
        planted[int(target)] = {"source": str(sources[source]), "box": (x0, y0, x0 + side, y0 + side), "image": dst}
    for k, path in enumerate(collection):
        out = folder / f"{k:03d}.png"
        if not out.exists():
            image = planted[k]["image"] if k in planted else load_image(path)
            cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return [{"source": v["source"], "box": v["box"], "target": folder / f"{k:03d}.png"} for k, v in planted.items()]


def ranks(work: Path, details: list[dict], backbone_name: str) -> list[int]:
    index, _ = update_index(work / "collection", work / f"index-{backbone_name}", backbone=backbone_name,
                            show_progress=False)
    backbone = get_backbone(backbone_name)
    out = []
    for detail in details:
        pixels = query_pixels(load_image(detail["source"]), detail["box"], index.size)
        feats = backbone(pixels_to_tensor(pixels))[0].numpy()
        candidates = index.descriptor_index().search([pooled(feats)[None]], len(index))[0]
        paths = [index.image(i).path.resolve() for i, _ in candidates]
        out.append(paths.index(detail["target"].resolve()) + 1)
    index.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--backbones", nargs="+", default=["efficientnet-lite2", "efficientnet-lite2-block12"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    details = plant(args.work, args.seed)
    result = {}
    for name in args.backbones:
        r = np.array(ranks(args.work, details, name))
        result[name] = {f"recall@{k}": float((r <= k).mean()) for k in (1, 5, 10, 20)} | {"median_rank": float(np.median(r))}
        print(name, json.dumps(result[name]), flush=True)


if __name__ == "__main__":
    main()
