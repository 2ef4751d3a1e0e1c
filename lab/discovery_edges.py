"""What separates true from false discovery edges on the development collection (issue 37): for every
candidate pair (each image's ``--top-k`` descriptor neighbours) the pair model's matched fraction (the
larger way), the index keypoints' inliers (xfeat, mutual NN) and xfeat-lighterglue's inliers on the
images, with the truth (a true pair, the same true group, or neither) and the descriptor rank.

    .venv/bin/python lab/discovery_edges.py W/discover_dev --index W/discover_work/index --out W/edges.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import segswap
from segswap.collection.index import CollectionIndex
from segswap.collection.predictions import neighbour_pairs, predict_pairs
from segswap.evaluation.discovery import _groups, read_discovery_truth
from segswap.keypoints import get_matcher
from segswap.models.outputs import matched_fraction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    truth = read_discovery_truth(args.root)
    groups = _groups(truth.pairs)
    true_pairs = {frozenset((a, b)) for a, b, _ in truth.pairs}
    index = CollectionIndex(args.index)
    matcher = segswap.load(size=index.size)
    ids, regional = index.regional_descriptors()
    pairs = neighbour_pairs(index.descriptor_index(), regional, ids, args.top_k)
    rel = {i: index.image(i).path.relative_to((args.root / "images").resolve()).as_posix() for i in ids}
    settings = index.keypoint_settings
    mnn = get_matcher(settings["matcher"], **settings["conf"])
    glue = get_matcher("xfeat-lighterglue")
    stored = {i: index.keypoints(i) for i in ids}
    rows = []
    for pred in predict_pairs(matcher, index.features, pairs):
        a, b = rel[pred.a], rel[pred.b]
        matched = max(float(matched_fraction(pred.score_ab, pred.mask_a.shape)),
                      float(matched_fraction(pred.score_ba, pred.mask_b.shape)))
        found, _ = mnn.match_features(stored[pred.a], stored[pred.b])
        inliers = mnn.geometry(stored[pred.a], stored[pred.b], found).count
        lg = glue.match(None, None, feats_a=stored[pred.a], feats_b=stored[pred.b])["geometry"].count
        same_group = a in groups and b in groups and groups[a] == groups[b]
        rows.append((a, b, matched, inliers, lg, frozenset((a, b)) in true_pairs, same_group))
    np.savez(args.out, a=np.array([r[0] for r in rows]), b=np.array([r[1] for r in rows]),
             matched=np.array([r[2] for r in rows]), inliers=np.array([r[3] for r in rows]),
             lighterglue=np.array([r[4] for r in rows]), true=np.array([r[5] for r in rows]),
             same_group=np.array([r[6] for r in rows]))
    print(json.dumps({"pairs": len(rows), "true": int(sum(r[5] for r in rows)), "same_group": int(sum(r[6] for r in rows))}))


if __name__ == "__main__":
    main()
