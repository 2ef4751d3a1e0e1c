"""`segswap serve`: the local web viewer, a thin wrapper over :func:`segswap.serve.serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..serve import DEFAULT_HOST, DEFAULT_PORT, ViewerSettings, serve as run_server
from .common import MODEL_HELP, WEIGHTS_HELP


def serve(
    index_dir: Path = typer.Option(..., "--index", help="Index folder from `segswap index`."),
    host: str = typer.Option(DEFAULT_HOST, help="Address to listen on. Anything but loopback shares the viewer "
                                                "with the network (a warning says so; there is no password)."),
    port: int = typer.Option(DEFAULT_PORT, help="Port to listen on."),
    cosegment: Optional[Path] = typer.Option(None, help="Output folder of `segswap cosegment DIR --out OUT` to show "
                                                         "(and mark masks wrong) on the Co-segmentation page."),
    discovery: Optional[Path] = typer.Option(None, help="JSON of `segswap discover --json` to show on the Discovery "
                                                         "page (default: the last discovery run from the page)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    shipped: bool = typer.Option(False, "--shipped", help="Run the shipped pair model even where the index holds "
                                                          "weights learned on its images (`segswap learn`)."),
):
    """Browse a collection in a web page: thumbnails, "where else does this detail appear?" by drawing a
    box, repeated patterns, co-segmentation masks. Serves on this machine only, unless --host says
    otherwise; only the indexed folder's files are served. Ctrl-C stops it."""
    run_server(ViewerSettings(index_dir, model=model, weights=weights, cosegment=cosegment, discovery=discovery,
                              shipped=shipped),
               host, port, open_message=typer.echo)


COMMANDS = {"serve": serve}
