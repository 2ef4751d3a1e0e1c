"""``segswap backbones``: which feature extractors and priors are installed."""

from __future__ import annotations

import json

import typer


def backbones(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the feature backbones, the objectness prior and the keypoint matchers, and whether their
    packages are installed."""
    from rich.console import Console
    from rich.table import Table

    from ..backbone import DEFAULT_BACKBONE, list_backbones
    from ..keypoints import list_matchers
    from ..shipped import KEYPOINTS, shipped_backbone

    shipped = shipped_backbone()
    marks = {DEFAULT_BACKBONE: " (default: training, training-free models)"}
    if shipped is not None:
        marks[shipped] = marks.get(shipped, "") + " (the shipped pair model's; new indexes)"

    marks[KEYPOINTS] = " (keypoints; default)"
    rows = list_backbones() + list_matchers()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(box=None, show_edge=False, pad_edge=False)
    for column in ("backbone", "channels", "installed", "description"):
        table.add_column(column, justify="right" if column == "channels" else "left")
    for row in rows:
        state = "yes" if row["installed"] else f"no: {row['install']}"
        mark = marks.get(row["name"], {"prior": " (prior)", "keypoints": " (keypoints)"}.get(row["kind"], ""))
        table.add_row(row["name"] + mark, str(row["channels"]), state, row["description"])
    console = Console()
    if not console.is_terminal:  # piped: one row per line, not wrapped at 80 columns
        console.width = 10_000
    console.print(table)


COMMANDS = {"backbones": backbones}
