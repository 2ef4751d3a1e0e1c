"""Can a group's DINOv2 tokens tell an image without the common object? (lab/results.md, issue 20)

    .venv/bin/python lab/absent_object_cls.py

Each MSRC group is polluted with three images of other MSRC groups ("other category") and three of
``../shared/data/eval/pairs`` ("unrelated": graffiti, boxes, aerial views...), drawn with seed 0. Every
image's DINOv2-S class token comes from the objectness prior's own forward pass; an image's score is the
cosine of its token with the mean token of the group's other images. Two decisions are counted:
(a) Amir et al.'s outlier rule, cosine < 0.7; (b) cosine below the group's median by more than three
robust deviations (1.4826 × MAD). A second score, from the patch tokens of the same pass: for each
other image of the group, the saliency-weighted mean over the image's tokens of their best cosine in
that image; the median over the other images; decision (c): rule (b)'s cut on that score. The rule to
accept a decision, fixed before the run: at most 2 % of the members blanked and at least 75 % of the
unrelated images.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segswap.backbone.objectness import get_prior
from segswap.io import load_image
from segswap.io.paths import list_images

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
INTRUDERS = 3


def main() -> None:
    root = EVAL / "msrc_coseg" / "images"
    unrelated_pool = list_images(EVAL / "pairs")
    groups = {g.name: list_images(g) for g in sorted(root.iterdir()) if g.is_dir()}
    prior = get_prior()
    outputs: dict[Path, tuple] = {}

    def run(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(class token, unit patch tokens n×C, saliency weights n) of one image."""
        if path not in outputs:
            out = prior(load_image(path))
            grid = out["tokens"].shape[:2]
            patches = out["tokens"].reshape(-1, out["tokens"].shape[-1]).astype(np.float64)
            patches /= np.linalg.norm(patches, axis=1, keepdims=True)
            weights = cv2.resize(out["saliency"], (grid[1], grid[0]), interpolation=cv2.INTER_AREA).ravel()
            outputs[path] = (out["cls"].astype(np.float64), patches, weights / max(weights.sum(), 1e-6))
        return outputs[path]

    def best_match_score(paths: list[Path]) -> np.ndarray:
        scores = np.zeros(len(paths))
        for i, p in enumerate(paths):
            _, patches, weights = run(p)
            per_partner = [float(weights @ (patches @ run(q)[1].T).max(1)) for j, q in enumerate(paths) if j != i]
            scores[i] = np.median(per_partner)
        return scores

    rng = np.random.default_rng(0)
    counts = {rule: {"members": 0, "other category": 0, "unrelated": 0} for rule in ("a", "b", "c")}
    print("group | members | members' lowest / median cosine | other category | unrelated")
    for name, members in groups.items():
        others = [p for g, ps in groups.items() if g != name for p in ps]
        category = [others[i] for i in rng.choice(len(others), INTRUDERS, replace=False)]
        unrelated = [unrelated_pool[i] for i in rng.choice(len(unrelated_pool), INTRUDERS, replace=False)]
        everyone = members + category + unrelated
        vectors = np.stack([run(p)[0] for p in everyone])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        total = vectors.sum(0)
        rest = total[None] - vectors
        cosine = (vectors * rest).sum(1) / np.linalg.norm(rest, axis=1)
        median = np.median(cosine)
        spread = 1.4826 * np.median(np.abs(cosine - median))
        matched = best_match_score(everyone)
        matched_median = np.median(matched)
        matched_spread = 1.4826 * np.median(np.abs(matched - matched_median))
        m = len(members)
        for rule, absent in (("a", cosine < 0.7), ("b", cosine < median - 3 * spread),
                             ("c", matched < matched_median - 3 * matched_spread)):
            counts[rule]["members"] += int(absent[:m].sum())
            counts[rule]["other category"] += int(absent[m:m + INTRUDERS].sum())
            counts[rule]["unrelated"] += int(absent[m + INTRUDERS:].sum())
        print(f"{name} | {m} | {cosine[:m].min():.2f} / {median:.2f} | "
              f"{' '.join(f'{c:.2f}' for c in cosine[m:m + INTRUDERS])} | "
              f"{' '.join(f'{c:.2f}' for c in cosine[m + INTRUDERS:])}")
    n_members, n_intruders = sum(map(len, groups.values())), INTRUDERS * len(groups)
    for rule, label in (("a", "class token, cosine < 0.7"), ("b", "class token, median − 3 robust deviations"),
                        ("c", "patch tokens' best matches, median − 3 robust deviations")):
        c = counts[rule]
        print(f"({rule}) {label}: members blanked {c['members']}/{n_members}, other category "
              f"{c['other category']}/{n_intruders}, unrelated {c['unrelated']}/{n_intruders}")


if __name__ == "__main__":
    main()
