"""Issue 37: why the regions design misses the true pairs it misses, and what two stronger checks would add.

    .venv/bin/python lab/discovery_misses.py W/discover_dev --work W/dw

For every true pair of the development collection (`lab/discovery_collection.py`): whether the descriptor
shortlist (top-k 10) holds it, and the evidence the regions design judged it on — the pair model's matched
fraction at one view and the index keypoints' inliers — against their calibrated thresholds. Then, for the
shortlisted pairs in the band below both thresholds (matched ≥ a quarter of its threshold or ≥ 5 inliers), the
pair score over `segswap pair`'s five views and the inliers of the default keypoint matcher (LighterGlue), true
pairs marked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import segswap
import segswap.collection.regions as regions
from segswap.cli.common import load_matcher
from segswap.collection.index import CollectionIndex
from segswap.keypoints import get_matcher
from segswap.models.outputs import matched_fraction
from segswap.shipped import KEYPOINTS


def read_collection(description: str) -> tuple[Path, dict, CollectionIndex]:
    """The development collection named on the command line (ROOT --work WORK): its root, its truth and the index
    `segswap eval discover` made of it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="`segswap eval discover`'s --work (its index/)")
    args = parser.parse_args()
    return args.root, json.loads((args.root / "truth.json").read_text()), CollectionIndex(args.work / "index")


def main() -> None:
    root, truth, index = read_collection(__doc__.splitlines()[0])
    matcher = load_matcher(None, None, backbone=index.backbone, size=index.size)
    judged = {}
    judge = regions._Judge.__call__

    def recording(self, position, pred):
        matched = max(float(matched_fraction(pred.score_ab, pred.mask_a.shape)),
                      float(matched_fraction(pred.score_ba, pred.mask_b.shape)))
        judged[frozenset((pred.a, pred.b))] = (matched, self._inliers(pred.a, pred.b)[0] if self.keypointer else 0)
        return judge(self, position, pred)

    regions._Judge.__call__ = recording
    found = regions.discover_regions(index, matcher, top_k=10, show_progress=False)
    regions._Judge.__call__ = judge
    matched_threshold, inlier_threshold = found.thresholds["matched_fraction"], found.thresholds["inliers"]
    print(f"thresholds: matched fraction {matched_threshold:.4f}, inliers {inlier_threshold:g}")
    images = (root / "images").resolve()
    ids = {str(image.path.resolve().relative_to(images)): image.id for image in index.images()}
    paths = {image.id: image.path for image in index.images()}
    true_pairs = {frozenset((ids[p["a"]], ids[p["b"]])): p for p in truth["pairs"]}
    for key, pair in true_pairs.items():
        evidence = judged.get(key)
        verdict = ("not shortlisted" if evidence is None else
                   f"matched {evidence[0]:.4f}, inliers {evidence[1]}"
                   + (" (verified)" if evidence[0] >= matched_threshold or evidence[1] >= inlier_threshold else ""))
        print(f"{pair['kind']:15s} {pair['a']:38s} {pair['b']:38s} {verdict}")
    band = [key for key, (m, k) in judged.items() if m < matched_threshold and k < inlier_threshold
            and (m >= matched_threshold / 4 or k >= 5)]
    print(f"\nband below both thresholds: {len(band)} of {len(judged)} shortlisted pairs, "
          f"{sum(key in true_pairs for key in band)} of them true")
    views = segswap.load(size=index.size)
    glue = get_matcher(KEYPOINTS)
    counts = {"views": [0, 0], "glue": [0, 0]}
    for key in band:
        a, b = sorted(key)
        result = views.match(paths[a], paths[b], prior=False, keypoints=False)
        over_views = max(float(matched_fraction(result["score"], result["mask_a_tokens"].shape)),
                         float(matched_fraction(result["score_ba"], result["mask_b_tokens"].shape)))
        inliers = glue.match(paths[a], paths[b])["geometry"].count
        truth_mark = key in true_pairs
        counts["views"][truth_mark] += over_views >= matched_threshold
        counts["glue"][truth_mark] += inliers >= inlier_threshold
        print(f"{'TRUE' if truth_mark else '    '} {paths[a].name:30s} {paths[b].name:30s} one view "
              f"{judged[key][0]:.4f} / {judged[key][1]} inliers; five views {over_views:.4f} "
              f"(×{result['view']['scale']}); {KEYPOINTS} {inliers}", flush=True)
    for name, (false, true) in counts.items():
        print(f"{name} at the thresholds would add {true} true and {false} false pairs")


if __name__ == "__main__":
    main()
