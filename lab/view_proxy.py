"""Rule P1 (lab/rules.md): does a coarse proxy pick the view the full search of `segswap pair` picks?

    .venv/bin/python lab/view_proxy.py [--json W/view_proxy.json]

For the sample pairs of eval/pairs in both orders, with the shipped weights: today's chosen view
(`Matcher.match`, SEARCH_SCALES, no prior), and the view the two-run coarse pass would choose (the plain
view and the proxy's best other view, the more confident of the two by the model), with the proxy's scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

import segswap
from segswap.pair import SEARCH_SCALES, rescale, view_confidence

PAIRS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "pairs"
SAMPLES = [("box.png", "box_in_scene.png"), ("graf1.png", "graf3.png"), ("aero1.jpg", "aero3.jpg"),
           ("leuvenA.jpg", "leuvenB.jpg"), ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg"),
           ("rubberwhale1.png", "rubberwhale2.png"), ("basketball1.png", "basketball2.png"),
           ("motorcycle_left.png", "motorcycle_right.png")]


def mutual_share(fa: torch.Tensor, fb: torch.Tensor, min_cosine: float = 0.5) -> float:
    """Share of the smaller map's cells that are mutual nearest neighbours with cosine ≥ ``min_cosine``."""
    a = F.normalize(fa.flatten(1).T, dim=1)
    b = F.normalize(fb.flatten(1).T, dim=1)
    cosine = a @ b.T
    ab, ba = cosine.argmax(1), cosine.argmax(0)
    mutual = (ba[ab] == torch.arange(len(a))) & (cosine.max(1).values >= min_cosine)
    return float(mutual.sum()) / min(len(a), len(b))


def proxy_scores(fa: torch.Tensor, fb: torch.Tensor, scales) -> dict[float, float]:
    """Per relative scale s (b's content × s): the plain features with the enlarged side's map shrunk by 1/s."""
    scores = {}
    for s in scales:
        if s == 1.0:
            continue
        if s > 1:  # b is enlarged by s in that view: shrink a's map by s instead
            small = F.interpolate(fa, scale_factor=1 / s, mode="area") if min(fa.shape[2:]) / s >= 2 else fa
            scores[s] = mutual_share(small[0], fb[0])
        else:
            small = F.interpolate(fb, scale_factor=s, mode="area") if min(fb.shape[2:]) * s >= 2 else fb
            scores[s] = mutual_share(fa[0], small[0])
    scores_plain = mutual_share(fa[0], fb[0])
    return {"plain": scores_plain, **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    matcher = segswap.load()
    rows, agree = [], 0
    for first, second in SAMPLES:
        for a, b in ((first, second), (second, first)):
            today = matcher.match(PAIRS / a, PAIRS / b, prior=False, keypoints=False)["view"]["scale"]
            ta, _ = matcher.prepare(str(PAIRS / a))
            tb, _ = matcher.prepare(str(PAIRS / b))
            fa, fb = matcher.features(ta), matcher.features(tb)
            proxy = proxy_scores(fa, fb, SEARCH_SCALES)
            other = max((s for s in proxy if s != "plain"), key=lambda s: proxy[s])
            confidences = {}
            for s in (1.0, other):
                scale_a, scale_b = (1.0, s) if s >= 1 else (1 / s, 1.0)
                out = matcher.predict(matcher.features(rescale(ta, scale_a)), matcher.features(rescale(tb, scale_b)))
                confidences[s] = float(view_confidence(out)[0])
            chosen = max(confidences, key=confidences.get)
            agree += chosen == today
            rows.append({"a": a, "b": b, "today": today, "proxy_best": other, "coarse_pass": chosen,
                         "proxy": {str(k): round(v, 3) for k, v in proxy.items()}})
            print(f"{a} → {b}: today ×{today}, coarse pass ×{chosen} (proxy prefers ×{other}; "
                  + ", ".join(f"{k}: {v:.2f}" for k, v in proxy.items()) + ")", flush=True)
    print(f"same view on {agree} of {len(rows)} pairs")
    if args.json:
        args.json.write_text(json.dumps({"agree": agree, "pairs": rows}, indent=1))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
