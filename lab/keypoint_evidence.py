"""Per-pair evidence for issue 35's rules (lab/rules.md, 2026-12-07): the pair score over `segswap pair`'s
five views (verify's weights) and, for each keypoint matcher, its matches and homography / fundamental
inliers; saved as .npz for `keypoint_rules.py`.

    .venv/bin/python lab/keypoint_evidence.py calibration W/verify_cal_301 --out W/ev_cal.npz
    .venv/bin/python lab/keypoint_evidence.py conditions W/conditions --out W/ev_cond.npz
    .venv/bin/python lab/keypoint_evidence.py samples --out W/ev_samples.npz

Pairs: a synth folder's positives against `calibrate-verify`'s negatives (seed 0; the conditions'
folders with the benchmark's seed 201, as `eval conditions` draws them); the samples' 8 matching pairs and
56 non-matching combinations. Each image's keypoints are extracted once per matcher.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from segswap.evaluation.calibration import negative_pairs
from segswap.keypoints import get_matcher, matcher_names
from segswap.synth.cache import FeatureCache, build_cache
from segswap.verify.same_object import load_pair_score_verifier

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "pairs"
SAMPLE_PAIRS = [("box.png", "box_in_scene.png"), ("graf1.png", "graf3.png"), ("aero1.jpg", "aero3.jpg"),
                ("leuvenA.jpg", "leuvenB.jpg"), ("Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg"),
                ("rubberwhale1.png", "rubberwhale2.png"), ("basketball1.png", "basketball2.png"),
                ("motorcycle_left.png", "motorcycle_right.png")]


def folder_pairs(folder: Path, seed: int, verifier) -> tuple[list, np.ndarray]:
    cache = FeatureCache([build_cache(folder, verifier.backbone.name, verifier.size, show_progress=False)])
    n = len(cache)
    negatives, _ = negative_pairs(cache, seed)
    pairs = [(cache.pair_dirs[i] / "a.jpg", cache.pair_dirs[i] / "b.jpg") for i in range(n)]
    pairs += [(cache.pair_dirs[int(i)] / "a.jpg", cache.pair_dirs[int(j)] / "b.jpg") for i, j in negatives]
    return pairs, np.r_[np.ones(n), np.zeros(len(negatives))]


def sample_pairs() -> tuple[list, np.ndarray]:
    matching = [(SAMPLES / a, SAMPLES / b) for a, b in SAMPLE_PAIRS]
    other = [(SAMPLES / SAMPLE_PAIRS[i][0], SAMPLES / SAMPLE_PAIRS[j][1]) for i in range(8) for j in range(8) if i != j]
    extra = [(SAMPLES / "graf1.png", SAMPLES / "box.png")]
    return matching + other + extra, np.r_[np.ones(8), np.zeros(56), [-1]]  # -1: graffiti vs box, reported apart


def evidence(pairs: list, labels: np.ndarray, matchers: list[str], pair_score: bool) -> dict:
    out = {"labels": labels, "a": np.array([str(a) for a, _ in pairs]), "b": np.array([str(b) for _, b in pairs])}
    if pair_score:
        verifier = load_pair_score_verifier()
        start, scores = time.perf_counter(), []
        for k, (a, b) in enumerate(pairs):
            scores.append(verifier.verify(a, b)["score"])
            if k % 50 == 0:
                print(f"pair score {k}/{len(pairs)} {time.perf_counter() - start:.0f} s", flush=True)
        out["pair_score"] = np.array(scores)
        out["pair_score_seconds"] = time.perf_counter() - start
    for name in matchers:
        matcher = get_matcher(name)
        cache, rows = {}, []
        start = time.perf_counter()
        for k, (a, b) in enumerate(pairs):
            for image in (a, b):
                if image not in cache:
                    cache[image] = matcher.extract(image)
            result = matcher.match(None, None, feats_a=cache[a], feats_b=cache[b])
            fundamental = estimate_fundamental(matcher, cache[a], cache[b], result)
            rows.append((len(result["scores"]), result["geometry"].count, fundamental))
            if k % 100 == 0:
                print(f"{name} {k}/{len(pairs)} {time.perf_counter() - start:.0f} s", flush=True)
        rows = np.array(rows)
        out[f"{name}/matches"], out[f"{name}/homography"], out[f"{name}/fundamental"] = rows.T
        out[f"{name}/seconds"] = time.perf_counter() - start
        out[f"{name}/images"] = len(cache)
    return out


def estimate_fundamental(matcher, feats_a, feats_b, result) -> int:
    from segswap.keypoints.geometry import estimate

    points_a = result["keypoints_a"] / feats_a["scale"]
    points_b = result["keypoints_b"] / feats_b["scale"]
    return estimate(points_a, points_b, "fundamental", threshold=matcher.conf["threshold_px"]).count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=["calibration", "conditions", "samples"])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--matchers", default=",".join(matcher_names()))
    parser.add_argument("--no-pair-score", action="store_true")
    args = parser.parse_args()
    matchers = args.matchers.split(",") if args.matchers else []
    if args.set == "samples":
        pairs, labels = sample_pairs()
        result = evidence(pairs, labels, matchers, not args.no_pair_score)
    elif args.set == "calibration":
        verifier = load_pair_score_verifier()
        pairs, labels = folder_pairs(args.folder, 0, verifier)
        result = evidence(pairs, labels, matchers, not args.no_pair_score)
    else:
        verifier = load_pair_score_verifier()
        result, condition = {}, []
        for folder in sorted(p for p in args.folder.iterdir() if (p / "manifest.jsonl").is_file()):
            pairs, labels = folder_pairs(folder, 201, verifier)
            part = evidence(pairs, labels, matchers, not args.no_pair_score)
            for key, value in part.items():
                result.setdefault(key, []).append(value)
            condition += [folder.name] * len(labels)
            print(f"done {folder.name}", flush=True)
        result = {k: (np.concatenate([np.atleast_1d(x) for x in v]) if not k.endswith(("seconds", "images"))
                      else np.array(v)) for k, v in result.items()}
        result["condition"] = np.array(condition)
    np.savez(args.out, **result)
    print(json.dumps({k: float(np.sum(v)) for k, v in result.items() if k.endswith("seconds")}))


if __name__ == "__main__":
    main()
