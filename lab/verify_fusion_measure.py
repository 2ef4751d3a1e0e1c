"""Each piece of evidence and their logistic-regression fusion, measured against issue 23 item 4's rule.

Reads the three files of lab/verify_fusion_features.py. The fusion (StandardScaler + sklearn
LogisticRegression on SCOTT's logit, the pair score, ArtMiner's score and log(1 + SIFT inliers)) is fitted
on the calibration pairs only; its threshold is the lowest at which "match" reaches precision 0.95 on the
calibration pairs' out-of-fold probabilities (5 stratified folds). Single features get the same
precision-0.95 threshold on the calibration pairs (no fit). Then: the sample pairs' counts at those
thresholds, graf1 vs box, AP per condition of the benchmark.

    .venv/bin/python lab/verify_fusion_measure.py cal.npz samples.npz --conditions cond.npz --json fusion.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from segswap.evaluation.calibration import operating_point

TARGET_PRECISION = 0.95
EPS = 1e-6


def design(evidence: np.ndarray, columns: list[int]) -> np.ndarray:
    """The model's inputs: SCOTT as a logit, SIFT inliers as log(1 + n) (both are heavy-tailed otherwise)."""
    x = np.asarray(evidence, np.float64).copy()
    p = np.clip(x[:, 0], EPS, 1 - EPS)
    x[:, 0] = np.log(p / (1 - p))
    x[:, 3] = np.log1p(x[:, 3])
    return x[:, columns]


def fused_candidate(cal_x, cal_y):
    """(model fitted on all calibration pairs, out-of-fold probabilities)."""
    model = make_pipeline(StandardScaler(), LogisticRegression())
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    oof = cross_val_predict(model, cal_x, cal_y, cv=folds, method="predict_proba")[:, 1]
    return model.fit(cal_x, cal_y), oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("calibration", type=Path)
    parser.add_argument("samples", type=Path)
    parser.add_argument("--conditions", type=Path, help="the conditions file (optional: its columns are left out without it)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cal, samples = np.load(args.calibration), np.load(args.samples)
    cond = np.load(args.conditions) if args.conditions else {"files": []}
    names = list(cal["columns"])
    files = cond.files if args.conditions else []
    conditions = sorted(k.removesuffix("_evidence") for k in files if k.endswith("_evidence"))
    candidates = {name: [k] for k, name in enumerate(names)}
    candidates.update({"fused (all four)": [0, 1, 2, 3], "fused: scott + sift": [0, 3],
                       "fused: scott + pair_score + sift": [0, 1, 3], "fused: without scott": [1, 2, 3]})
    rows = {}
    for name, columns in candidates.items():
        cal_x, cal_y = design(cal["evidence"], columns), cal["labels"]
        if len(columns) > 1:
            model, cal_scores = fused_candidate(cal_x, cal_y)
            score = lambda e: model.predict_proba(design(e, columns))[:, 1]  # noqa: E731
        else:
            # a single feature in its own units (a monotone change would not move AP or the counts)
            cal_scores, model = cal["evidence"][:, columns[0]], None
            score = lambda e: np.asarray(e)[:, columns[0]]  # noqa: E731
        point = operating_point(cal_scores[cal_y == 1], cal_scores[cal_y == 0], TARGET_PRECISION)
        s, y = score(samples["evidence"]), samples["labels"]
        said = s >= point["threshold"]
        matching, other, graf = said[:8], said[8:64], said[64]
        cond_ap = {c: float(average_precision_score(cond[f"{c}_labels"], score(cond[f"{c}_evidence"])))
                   for c in conditions}
        rows[name] = {
            "calibration_ap": point["average_precision"], "threshold": point["threshold"],
            "calibration_precision": point["precision"], "calibration_recall": point["recall"],
            "sample_ap": float(average_precision_score(y[:64], s[:64])),
            "matching_said_match": int(matching.sum()), "non_matching_said_match": int(other.sum()),
            "graf1_vs_box": "match" if graf else "no match", "graf1_vs_box_score": float(s[64]),
            "sample_scores": {f"{a}/{b}": float(v) for (a, b), v in zip(samples["pairs"][:8], s[:8])},
            "conditions_ap": cond_ap,
            "mean_ap_ten_conditions": float(np.mean([v for c, v in cond_ap.items() if c != "none"])) if cond_ap else None,
            "weights": None if model is None else {
                "mean": model[0].mean_.tolist(), "scale": model[0].scale_.tolist(),
                "coef": model[1].coef_[0].tolist(), "intercept": float(model[1].intercept_[0])},
        }
    print("| score | cal. AP | threshold | cal. P / R | sample AP | matching 'match' | non-matching 'match' | graf1 vs box "
          "| conditions: none AP | mean AP, 10 conditions |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['calibration_ap']:.3f} | {r['threshold']:.3f} | {r['calibration_precision']:.2f} / "
              f"{r['calibration_recall']:.2f} | {r['sample_ap']:.3f} | {r['matching_said_match']} / 8 | "
              f"{r['non_matching_said_match']} / 56 | {r['graf1_vs_box']} ({r['graf1_vs_box_score']:.3f}) | "
              f"{_number(r['conditions_ap'].get('none'))} | {_number(r['mean_ap_ten_conditions'])} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


def _number(value) -> str:
    return "—" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
