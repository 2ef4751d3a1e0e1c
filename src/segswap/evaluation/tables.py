"""Markdown tables of evaluation results: as ``segswap eval`` prints them, and as the docs' Benchmarks page
renders them from the JSON the commands write (:func:`table_for`)."""

from __future__ import annotations

import statistics


def _number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of ``header`` and ``rows`` (cells already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def coseg_table(result: dict) -> str:
    """One row per group and the mean over groups: n, P, J."""
    rows = [[group, str(row["n"]), _number(row["P"]), _number(row["J"])] for group, row in result["groups"].items()]
    n = sum(row["n"] for row in result["groups"].values())
    rows.append(["**mean**", str(n), _number(result["mean"]["P"]), _number(result["mean"]["J"])])
    return markdown_table(["group", "n", "P", "J"], rows)


def corr_table(result: dict) -> str:
    """One row per pair and method: the number of matches and the fractions within each threshold."""
    thresholds = None
    rows = []
    for pair in result["pairs"]:
        for method in result["methods"]:
            accuracy = pair[method]
            thresholds = list(accuracy["within"])
            rows.append([pair["pair"], method, str(accuracy["n"])] + [_number(v) for v in accuracy["within"].values()])
    return markdown_table(["pair", "method", "matches"] + [f"≤{t} px" for t in thresholds], rows)


def vpr_table(result: dict) -> str:
    """One row per ranking: Recall@K."""
    recalls = result["recall"]
    ks = list(next(iter(recalls.values())))
    names = {"global": "global descriptor", "pair-score": f"re-ranked by pair score ({result['model']})",
             "artminer-ransac": "re-ranked by ArtMiner verification", "sift-ransac": "re-ranked by SIFT + RANSAC inliers",
             "search": "as `segswap search` ranks (pair score, head by fused keypoint evidence)"}
    rows = [[names.get(name, f"re-ranked by {name} inliers")] + [_number(r[k]) for k in ks] for name, r in recalls.items()]
    return markdown_table(["ranking"] + [f"R@{k}" for k in ks], rows)


def same_place_table(result: dict) -> str:
    """One row per pair classifier: precision, recall, F1 at its threshold, and average precision."""
    rows = [[name, row["threshold_kind"], _number(row["threshold"]), _number(row["precision"]), _number(row["recall"]),
             _number(row["f1"]), _number(row["average_precision"])] for name, row in result["classifiers"].items()]
    return markdown_table(["classifier", "threshold from", "threshold", "precision", "recall", "F1", "AP"], rows)


def synthetic_table(result: dict) -> str:
    """One row: mask IoU, correspondence error (cells) and false-positive area on held-out synthetic pairs."""
    columns = ["iou", "corr_err_cells", "corr_err_median", "within_1_cell", "negative_area"]
    return markdown_table(["model", "weights", "pairs", "mask IoU", "corr. error (cells)", "median", "≤ 1 cell", "negative area"],
                  [[result["model"], result["weights"], str(result["pairs"])] + [_number(result[c]) for c in columns]])


def details_table(result: dict) -> str:
    """`segswap eval details`: mAP and the share of copies returned with their box, overall and by kind."""
    kinds = list(result["box_found_by_kind"])
    header = ["queries", "copies", "mAP", "boxed (IoU ≥ 0.5)", "boxed (IoU ≥ 0.3)", *(f"boxed: {k}" for k in kinds)]
    row = [str(result["queries"]), str(result["target_pairs"]), _number(result["map"]), _number(result["box_found"]),
           _number(result["box_found_iou_0_3"]), *(_number(result["box_found_by_kind"][k]) for k in kinds)]
    return markdown_table(header, [row])


def discovery_table(result: dict) -> str:
    """`segswap eval discover`: patterns, pair recall and precision, distinct patterns, recall by kind."""
    kinds = list(result["recall_by_kind"])
    header = ["design", "patterns", "pair recall", "pair precision", "distinct", *(f"recall: {k}" for k in kinds)]
    row = [result["design"], str(result["patterns"]), f"{_number(result['pair_recall'])} "
           f"({result['pairs_found']}/{result['true_pairs']})", _number(result["pair_precision"]),
           _number(result["distinct_patterns"]), *(_number(result["recall_by_kind"][k]) for k in kinds)]
    return markdown_table(header, [row])


def conditions_table(result: dict) -> str:
    """The benchmark as a Markdown table, one row per condition; a column per keypoint matcher (AP of its
    inliers)."""
    matchers = result.get("keypoints", [])
    header = ["condition", "group", "mask IoU", "IoU drop", "corr. err. (cells)", "pair-score AP",
              *(f"{m} AP" for m in matchers), f"verify ({result['verifier']['by']}) AP", "verify P / R"]
    rows = [[name, row["group"], f"{row['mask_iou']:.3f}", f"{row['iou_drop']:+.3f}", f"{row['corr_err_cells']:.2f}",
             f"{row['pair_score_ap']:.3f}", *(f"{row['keypoints'][m]['inliers_ap']:.3f}" for m in matchers),
             f"{row['verify_ap']:.3f}", f"{row['verify_precision']:.2f} / {row['verify_recall']:.2f}"]
            for name, row in result["conditions"].items()]
    return markdown_table(header, rows)


def alignment_table(result: dict) -> str:
    """Markdown: corner error in px (inliers) per pair and method, then the mean seconds per pair."""
    methods = result["methods"]

    def cell(entry: dict) -> str:
        return "failed" if entry["corner_error"] is None else f"{entry['corner_error']:.1f} ({entry['inliers']})"

    rows = [[row["pair"], *(cell(row[m]) for m in methods)] for row in result["pairs"]]
    rows.append(["seconds per pair", *(f"{statistics.fmean(row[m]['seconds'] for row in result['pairs']):.2f}"
                                       for m in methods)])
    return markdown_table(["pair", *methods], rows)


def table_for(result: dict) -> str:
    """The table of any ``segswap eval`` JSON this module knows, recognised by its keys."""
    if "box_found" in result:
        return details_table(result)
    if "pair_recall" in result:
        return discovery_table(result)
    if "groups" in result and "mean" in result:
        return coseg_table(result)
    if result.get("benchmark") == "conditions":
        return conditions_table(result)
    if "recall" in result:
        return vpr_table(result)
    if "classifiers" in result:
        return same_place_table(result)
    if "pairs" in result and "methods" in result:
        first = result["pairs"][0][result["methods"][0]] if result["pairs"] else {}
        return corr_table(result) if "within" in first else alignment_table(result)
    if "corr_err_cells" in result:
        return synthetic_table(result)
    raise ValueError(f"no table for a result with keys {sorted(result)[:8]}")
