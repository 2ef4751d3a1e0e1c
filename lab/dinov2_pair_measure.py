"""DINOv2 evidence alone and fused with the multi-view pair score, measured against the rule set before the run.

Reads lab/dinov2_pair_evidence.py's files for one or more blocks and lab/verify_multiscale.py's
(the multi-view pair score, `segswap verify`'s verdict today), joined pair by pair (same order). Selection
uses the calibration pairs only: candidate A is the DINOv2 column with the best calibration AP (a single column needs
no fit); candidate B is StandardScaler + LogisticRegression on [pair score, that
column], its AP out-of-fold (5 stratified folds). The better of the two is the candidate; its threshold is
the lowest at which "match" reaches precision 0.95 on the calibration pairs (out-of-fold for B). Then: the
sample pairs' counts, graf1 vs box, and AP per condition of the benchmark, for every column and the candidate.

    .venv/bin/python lab/dinov2_pair_measure.py --blocks 9 11 --dino /work/scratch/dino_{set}_b{block}.npz \
        --multiscale /work/scratch/multiscale/{set}.npz --json dinov2_measure.json
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

from segswap.errors import SegswapError
from segswap.evaluation.calibration import operating_point

TARGET_PRECISION = 0.95
#: File stems per set in the two producers' outputs.
DINO_SETS = {"calibration": "cal", "conditions": "cond", "samples": "samples"}
MULTISCALE_SETS = {"calibration": "cal", "conditions": "cond", "samples": "samples"}


def load_set(args, name: str) -> dict:
    """{'columns': names, per group ('all' or a condition): (N×K evidence, labels)}; column 0 the pair score."""
    ms = np.load(args.multiscale.format(set=MULTISCALE_SETS[name]))
    dinos = {b: np.load(args.dino.format(set=DINO_SETS[name], block=b)) for b in args.blocks}
    columns = ["pair_score"] + [f"b{b}_{c}" for b in args.blocks for c in dinos[b]["columns"]]
    groups = {}
    if name == "conditions":
        for key in ms.files:
            if key.endswith("_scores"):
                c = key.removesuffix("_scores")
                x = np.column_stack([ms[key][:, 0]] + [dinos[b][f"{c}_evidence"] for b in args.blocks])
                for b in args.blocks:
                    assert np.array_equal(dinos[b][f"{c}_labels"], ms[f"{c}_labels"])
                groups[c] = (x, ms[f"{c}_labels"])
    else:
        x = np.column_stack([ms["scores"][:, 0]] + [dinos[b]["evidence"] for b in args.blocks])
        for b in args.blocks:
            assert np.array_equal(dinos[b]["labels"], ms["labels"])
        groups["all"] = (x, ms["labels"])
    return {"columns": columns, "groups": groups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[9, 11])
    parser.add_argument("--dino", required=True, help="path pattern with {set} and {block}")
    parser.add_argument("--multiscale", required=True, help="path pattern with {set}")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cal, samples, cond = (load_set(args, s) for s in ("calibration", "samples", "conditions"))
    columns = cal["columns"]
    cx, cy = cal["groups"]["all"]
    sx, sy = samples["groups"]["all"]
    single_ap = {c: float(average_precision_score(cy, cx[:, k])) for k, c in enumerate(columns)}
    best = max((c for c in columns if c != "pair_score"), key=single_ap.get)
    k = columns.index(best)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    oof = cross_val_predict(model, cx[:, [0, k]], cy, cv=folds, method="predict_proba")[:, 1]
    model.fit(cx[:, [0, k]], cy)
    fused_ap = float(average_precision_score(cy, oof))
    report = {"calibration_ap": single_ap, "best_dino_column": best, "fused_oof_ap": fused_ap,
              "fused_coefficients": model[-1].coef_.tolist(), "fused_intercept": model[-1].intercept_.tolist()}

    def scorers():
        for c in columns:
            yield c, (lambda x, k=columns.index(c): x[:, k]), cx[:, columns.index(c)]
        yield "fused", (lambda x: model.predict_proba(x[:, [0, k]])[:, 1]), oof

    rows = {}
    for name, score, cal_scores in scorers():
        try:
            point = operating_point(cal_scores[cy == 1], cal_scores[cy == 0], TARGET_PRECISION)
        except SegswapError:  # no threshold reaches the precision: "match" is never said
            point = {"threshold": float("inf"), "precision": float("nan"), "recall": 0.0,
                     "average_precision": float(average_precision_score(cy, cal_scores))}
        said = score(sx) >= point["threshold"]
        per = {c: float(average_precision_score(y, score(x))) for c, (x, y) in cond["groups"].items()}
        rows[name] = {"threshold": point["threshold"], "cal_precision": point["precision"], "cal_recall": point["recall"],
                      "cal_ap": point["average_precision"], "matching_said_match": int(said[:8].sum()),
                      "non_matching_said_match": int(said[8:64].sum()), "graf1_vs_box": bool(said[64]),
                      "samples_missed": [f"{a}/{b}" for (a, b), m in zip(np.load(args.multiscale.format(set="samples"))["pairs"][:8], said[:8]) if not m],
                      "conditions_ap": per, "mean_ap_ten": float(np.mean([v for c, v in per.items() if c != "none"]))}
    candidate = "fused" if fused_ap > single_ap[best] else best
    report["candidate"] = candidate
    report["rows"] = rows
    r = rows[candidate]
    report["rule"] = {"samples": r["matching_said_match"] == 8 and r["non_matching_said_match"] <= 6,
                      "graf_vs_box_no_match": not r["graf1_vs_box"],
                      "mean_ap_ten>=0.848": r["mean_ap_ten"] >= 0.798 + 0.05,
                      "none_ap>=0.906": r["conditions_ap"]["none"] >= 0.926 - 0.02}
    report["rule"]["passes"] = all(report["rule"].values())
    print(f"{'column':<16} {'calAP':>6} {'thr':>8} {'R':>5} {'8':>2} {'56':>3} {'gb':>3} {'mean10':>6} {'none':>5} "
          + " ".join(f"{c[:6]:>6}" for c in cond["groups"] if c != "none"))
    for name, r in rows.items():
        print(f"{name:<16} {r['cal_ap']:6.3f} {r['threshold']:8.4f} {r['cal_recall']:5.2f} {r['matching_said_match']:2d} "
              f"{r['non_matching_said_match']:3d} {('M' if r['graf1_vs_box'] else '-'):>3} {r['mean_ap_ten']:6.3f} "
              f"{r['conditions_ap']['none']:5.3f} " + " ".join(f"{v:6.3f}" for c, v in r["conditions_ap"].items() if c != "none"))
    print(json.dumps({k: report[k] for k in ("best_dino_column", "fused_oof_ap", "candidate", "rule")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
