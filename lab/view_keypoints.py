"""Rule P2 (lab/rules.md): does the view the keypoints' homography points to match the view the full
search of `segswap pair` chooses?

    .venv/bin/python lab/view_keypoints.py [--json FILE]

For the sample pairs of eval/pairs in both orders, with the shipped weights and no prior: today's chosen view
(`Matcher.match` over SEARCH_SCALES, keypoints off) and, when the default keypoint matcher's homography has at
least KEYPOINT_MIN_INLIERS inliers, the view of SEARCH_SCALES nearest to the relative scale it implies (else
"all views", which is today's search).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

import segswap
from segswap.io import load_image
from segswap.keypoints import get_matcher
from segswap.shipped import KEYPOINT_MIN_INLIERS, KEYPOINTS, SEARCH_SCALES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from view_proxy import PAIRS, SAMPLES  # noqa: E402  (rule P1's sample pairs)


def implied_view(found: dict, size_a, size_b, model_size: int, scales) -> tuple[float | None, float | None]:
    """(relative scale the homography implies for b's content against a's in the model's frames, the view of
    ``scales`` nearest to its inverse in log scale), or (None, None) under KEYPOINT_MIN_INLIERS inliers."""
    geometry = found["geometry"]
    if geometry.matrix is None or geometry.count < KEYPOINT_MIN_INLIERS:
        return None, None
    h = geometry.matrix
    x, y = found["keypoints_a"][found["inliers"]].mean(axis=0)
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    local = math.sqrt(abs(np.linalg.det(h)) / abs(w) ** 3)  # the Jacobian's determinant of a homography is det(H)/w³
    content = local * (model_size / max(size_b)) / (model_size / max(size_a))
    return content, min(scales, key=lambda s: abs(math.log(s) + math.log(content)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    matcher = segswap.load()
    keypoints = get_matcher(KEYPOINTS)
    rows, agree = [], 0
    for first, second in SAMPLES:
        for a, b in ((first, second), (second, first)):
            image_a, image_b = load_image(PAIRS / a), load_image(PAIRS / b)
            today = matcher.match(image_a, image_b, prior=False, keypoints=False)["view"]
            found = keypoints.match(image_a, image_b)
            content, view = implied_view(found, image_a.shape[1::-1], image_b.shape[1::-1], matcher.size, SEARCH_SCALES)
            chosen = today["scale"] if view is None else view  # no geometry: all views, today's choice
            agree += chosen == today["scale"]
            rows.append({"a": a, "b": b, "today": today["scale"], "today_confidence": today["confidence"],
                         "inliers": found["geometry"].count, "content_scale": content, "keypoint_view": view, "chosen": chosen})
            print(f"{a} → {b}: today ×{today['scale']} (confidence {today['confidence']:.3f}); {found['geometry'].count} inliers"
                  + (f", content ×{content:.2f} → view ×{view}" if view is not None else " → all views"), flush=True)
    print(f"same view on {agree} of {len(rows)} pairs")
    if args.json:
        args.json.write_text(json.dumps({"agree": agree, "pairs": rows}, indent=1))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
