"""How well ArtMiner's one-shot detection alone ranks a collection for a detail query: every image scored by
the best mean cosine of the query box's templates over it (src/segswap/collection/template.py), ranked by it.

    .venv/bin/python lab/detail_template_rank.py W/details_dev [--features lite2] [--json out.json]

Prints detail mAP and box found (the template's box, top 10) as `segswap eval details` counts them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from segswap.collection import template as template_module
from segswap.collection.template import DetailTemplate
from segswap.evaluation.details import detail_scores, read_detail_truth
from segswap.io import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--features", default=template_module.TEMPLATE_BACKBONE)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    template_module.TEMPLATE_BACKBONE = args.features
    queries = read_detail_truth(args.root)
    images = args.root / "images"
    names = sorted(p.name for p in images.iterdir())
    pixels = {name: load_image(images / name) for name in names}
    start = time.perf_counter()
    results = []
    for q in queries:
        detail = DetailTemplate(pixels[q.image], q.box)
        scored = []
        for name in names:
            if name == q.image:
                continue
            score, box = detail.locate(pixels[name])
            scored.append((score, name, box))
        scored.sort(key=lambda s: -s[0])
        results.append([(name, box) for _, name, box in scored[:args.top]])
    s = detail_scores(queries, results)
    out = {k: s[k] for k in ("map", "box_found", "box_found_iou_0_3", "box_found_by_kind")}
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
