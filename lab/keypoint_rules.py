"""Issue 35's decisions from the evidence of `keypoint_evidence.py` (rules in lab/rules.md, 2026-12-07):
per matcher and for the fused verdict, calibration AP and thresholds, the samples' verdicts, the
conditions' AP.

    .venv/bin/python lab/keypoint_rules.py W/ev_cal.npz W/ev_samples.npz [--conditions W/ev_cond.npz] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.metrics import average_precision_score

from segswap.evaluation.calibration import operating_point

PHOTOGRAPHIC = ("dusk", "haze", "snow", "foliage", "night")
CONDITIONS = ("dusk", "haze", "snow", "foliage", "night", "line engraving", "halftone", "ink wash", "watercolour",
              "pen on aged paper")


def matchers_of(data) -> list[str]:
    return sorted({k.split("/")[0] for k in data.files if k.endswith("/homography")})


def fused_thresholds(inliers: np.ndarray, scores: np.ndarray, labels: np.ndarray, precision: float = 0.95):
    """(n, s) maximising recall subject to precision >= ``precision`` of "inliers >= n or score >= s"; ties → larger n."""
    best = None
    candidates_s = np.unique(np.r_[scores, np.inf])
    for n in range(1, 201):
        by_kp = inliers >= n
        for s in candidates_s:
            said = by_kp | (scores >= s)
            if not said.any():
                continue
            p = labels[said].mean()
            if p < precision:
                continue
            r = said[labels == 1].mean()
            key = (r, n)
            if best is None or key > best[0]:
                best = (key, n, float(s), float(p), float(r))
    return best


def fused(inliers, scores, n, s):
    return np.maximum(inliers / n, scores / s if np.isfinite(s) else 0 * scores)


def samples_line(values: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    said = values >= threshold
    return {"matching": int(said[labels == 1].sum()), "non_matching": int(said[labels == 0].sum()),
            "graf_vs_box": bool(said[labels == -1][0]), "graf_vs_box_value": float(values[labels == -1][0]),
            "matching_values": values[labels == 1].round(4).tolist()}


def condition_aps(values: np.ndarray, cond) -> dict:
    out = {}
    for c in np.unique(cond["condition"]):
        keep = cond["condition"] == c
        out[str(c)] = round(float(average_precision_score(cond["labels"][keep], values[keep])), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("calibration")
    parser.add_argument("samples")
    parser.add_argument("--conditions")
    parser.add_argument("--json")
    args = parser.parse_args()
    cal, smp = np.load(args.calibration), np.load(args.samples)
    cond = np.load(args.conditions) if args.conditions else None
    labels = cal["labels"]
    report = {}

    def candidate(name, cal_values, smp_values, cond_values, threshold, point):
        row = {"calibration_ap": round(float(average_precision_score(labels, cal_values)), 4), "threshold": threshold,
               **{k: round(v, 4) for k, v in point.items() if k in ("precision", "recall")},
               "samples": samples_line(smp_values, smp["labels"], threshold)}
        if cond is not None and cond_values is not None:
            aps = condition_aps(cond_values, cond)
            row["conditions"] = aps
            row["mean_ap_named_five"] = round(float(np.mean([aps[c] for c in PHOTOGRAPHIC if c in aps])), 4)
            row["mean_ap_ten"] = round(float(np.mean([aps[c] for c in CONDITIONS if c in aps])), 4)
        report[name] = row
        s = row["samples"]
        print(f"{name:38s} calAP {row['calibration_ap']:.3f} thr {threshold:8.4f} P/R {row.get('precision', 0):.2f}/"
              f"{row.get('recall', 0):.2f}  samples {s['matching']}/8 {s['non_matching']}/56 graf-box "
              f"{'MATCH' if s['graf_vs_box'] else 'no'} ({s['graf_vs_box_value']:.3f})"
              + (f"  five {row['mean_ap_named_five']:.3f} ten {row['mean_ap_ten']:.3f}" if 'mean_ap_ten' in row else ""))

    if "pair_score" in cal.files:
        point = operating_point(cal["pair_score"][labels == 1], cal["pair_score"][labels == 0], 0.95)
        candidate("P pair score (5 views)", cal["pair_score"], smp["pair_score"],
                  cond["pair_score"] if cond is not None and "pair_score" in cond.files else None, point["threshold"], point)
    for m in matchers_of(cal):
        for geometry in ("homography", "fundamental"):
            values = cal[f"{m}/{geometry}"]
            point = operating_point(values[labels == 1], values[labels == 0], 0.95)
            candidate(f"K {m} {geometry}", values, smp[f"{m}/{geometry}"],
                      cond[f"{m}/{geometry}"] if cond is not None else None, point["threshold"], point)
        if "pair_score" in cal.files:
            found = fused_thresholds(cal[f"{m}/homography"], cal["pair_score"], labels)
            _, n, s, p, r = found
            f_cal = fused(cal[f"{m}/homography"], cal["pair_score"], n, s)
            f_smp = fused(smp[f"{m}/homography"], smp["pair_score"], n, s)
            f_cond = fused(cond[f"{m}/homography"], cond["pair_score"], n, s) if cond is not None else None
            candidate(f"F {m} (n={n}, s={s:.4f})", f_cal, f_smp, f_cond, 1.0, {"precision": p, "recall": r})
            report[f"F {m} (n={n}, s={s:.4f})"].update({"n": n, "s": s})
        seconds = cal[f"{m}/seconds"]
        print(f"   {m}: {float(np.sum(seconds)):.0f} s for {int(np.sum(cal[f'{m}/images']))} images, {len(labels)} pairs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
