"""Query-by-query comparison of two `segswap eval vpr --json` results: for each ranking, the queries
that b finds in its first k and a does not (and the reverse), with the exact McNemar p-value.

    .venv/bin/python lab/compare_vpr.py shipped.json candidate.json [--k 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from segswap.evaluation.vpr import paired_recall_change


def _ranks(path: Path) -> dict:
    result = json.loads(path.read_text())
    if "first_correct_rank" not in result:
        raise SystemExit(f"{path}: no per-query ranks (written by an older segswap eval vpr)")
    # JSON keys are strings; query indices back to ints so they sort and print in order
    return {name: {int(q): rank for q, rank in ranks.items()} for name, ranks in result["first_correct_rank"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--k", type=int, default=1)
    args = parser.parse_args()
    ranks_a, ranks_b = _ranks(args.a), _ranks(args.b)
    print(f"| ranking | queries | R@{args.k} a | R@{args.k} b | b gains | b loses | McNemar p |")
    print("|---|---|---|---|---|---|---|")
    for name in ranks_a:
        change = paired_recall_change(ranks_a[name], ranks_b[name], args.k)
        print(f"| {name} | {change['queries']} | {change['recall_a']:.3f} | {change['recall_b']:.3f} | "
              f"{' '.join(map(str, change['gained'])) or '-'} | "
              f"{' '.join(map(str, change['lost'])) or '-'} | {change['p_value']:.3f} |")


if __name__ == "__main__":
    main()
