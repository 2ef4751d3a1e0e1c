"""Issue 37: where the descriptor shortlist ranks each true pair's partner, with the index's descriptors
(block-12 features) and with descriptors pooled the same way from the pair model's condition-tuned tail.

    .venv/bin/python lab/discovery_shortlist_ranks.py W/discover_dev --work W/dw

For each true pair of the development collection (`lab/discovery_collection.py`): the partner's rank among
each image's neighbours (the better of the two directions), and how many true pairs a top-5 / top-10
shortlist holds with each descriptor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from segswap.cli.common import load_matcher
from segswap.collection.descriptor import DescriptorIndex, regional_descriptors

from discovery_misses import read_collection


def partner_ranks(index: DescriptorIndex, ids: list[int], regional: list[np.ndarray]) -> dict[tuple[int, int], int]:
    found = index.search(regional, len(ids), exclude=list(ids))
    return {(i, j): r + 1 for i, hits in zip(ids, found) for r, (j, _) in enumerate(hits)}


def main() -> None:
    root, truth, index = read_collection(__doc__.splitlines()[0])
    images = (root / "images").resolve()
    by_name = {str(Path(im.path).resolve().relative_to(images)): im.id for im in index.images()}
    ids, stored = index.regional_descriptors()
    tail = load_matcher(None, None, backbone=index.backbone, size=index.size).model.tail
    with torch.inference_mode():
        tailed = [regional_descriptors(tail(torch.from_numpy(index.features(i).astype(np.float32))[None])[0].numpy())
                  for i in ids]
    tail_index = DescriptorIndex(np.mean([r[0] for r in tailed], axis=0))
    for i, rows in zip(ids, tailed):
        tail_index.add(i, rows)
    ranks = {"index descriptors": partner_ranks(index.descriptor_index(), ids, stored),
             "tail descriptors": partner_ranks(tail_index, ids, tailed)}
    print("| kind | a | " + " | ".join(ranks) + " |\n|---|---|---|---|")
    best = {name: [] for name in ranks}
    for pair in truth["pairs"]:
        a, b = by_name[pair["a"]], by_name[pair["b"]]
        for name, rank in ranks.items():
            best[name].append(min(rank.get((a, b), len(ids)), rank.get((b, a), len(ids))))
        print(f"| {pair['kind']} | {pair['a']} | " + " | ".join(str(best[name][-1]) for name in ranks) + " |")
    for name, values in best.items():
        values = np.array(values)
        print(f"{name}: {int((values <= 5).sum())} of {len(values)} true pairs in a top-5 shortlist, "
              f"{int((values <= 10).sum())} in a top-10")


if __name__ == "__main__":
    main()
