"""The ``segswap align`` command, a thin typer wrapper over :mod:`segswap.verify.align`; :func:`register`
adds it to the ``segswap`` app."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli_collection import MODEL_HELP, WEIGHTS_HELP


def align(
    image_a: Path = typer.Argument(..., help="Image to warp."),
    image_b: Path = typer.Argument(..., help="Reference image: the homography maps a's pixels to b's."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for result.json, warped.png, side_by_side.png, blend.png."),
    size: Optional[int] = typer.Option(None, help="Long side in px the features are computed at, a multiple of 16 (default 480)."),
    scales: Optional[int] = typer.Option(None, help="Resizes of b whose features are matched (default RANSAC-Flow's 7, "
                                                    "×1.2 to ÷1.2); 1 is ≈4× faster."),
    backbone: Optional[str] = typer.Option(None, help="Feature backbone (see `segswap backbones`)."),
    shared_only: bool = typer.Option(False, "--shared-only", help="Match only inside the pair model's co-segmentation "
                                                                  "masks: align what the two images share."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP + " With --shared-only."),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP + " With --shared-only."),
):
    """Align two images by a homography (RANSAC-Flow's coarse stage on backbone features)."""
    from .cli_collection import _matcher
    from .errors import SegswapError
    from .verify.align import align as run_align, write_alignment

    if (model or weights) and not shared_only:
        raise SegswapError("--model and --weights choose the pair model of --shared-only; add --shared-only")
    matcher = _matcher(model, weights) if shared_only else None
    aligned = run_align(image_a, image_b, backbone=backbone, size=size, scales=scales, matcher=matcher)
    result = write_alignment(out, aligned, {"image_a": str(image_a), "image_b": str(image_b),
                                            "model": matcher.name if matcher else None})
    typer.echo(f"homography from {result['inliers']} inliers of {result['matches']} mutual matches → {out}")


def register(app: typer.Typer) -> None:
    """Add the align command to ``app``."""
    app.command()(align)
