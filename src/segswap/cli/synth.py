"""``segswap synth``: the command-line face of :func:`segswap.synth.generate`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SegswapError
from .common import check_arguments


def synth(
    segments: List[Path] = typer.Option(..., "--segments", help="Segment source folder: YOLO-seg (images/ + labels/), co-segmentation (images/ + groundtruth/), or plain photos with --unsupervised. Repeatable."),
    backgrounds: Path = typer.Option(..., "--backgrounds", help="Folder of photos to paste objects onto."),
    out: Path = typer.Option(..., "--out", help="Output folder; an earlier run there is continued."),
    n: int = typer.Option(..., "-n", help="Number of pairs (ids 0..n-1)."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same pairs, byte for byte."),
    size: int = typer.Option(480, "--size", help="Image side in pixels (multiple of 16)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes (default: all cores)."),
    styles: Optional[Path] = typer.Option(None, "--styles", help="Folder of paintings for the colour and band-AdaIN styles."),
    unsupervised: bool = typer.Option(False, "--unsupervised", help="Find segments in plain photo folders (saliency + GrabCut)."),
    negatives: float = typer.Option(0.0, "--negatives", help="Fraction of stored pairs that share nothing."),
    blend: str = typer.Option("poisson", "--blend", help="poisson (normal or mixed seamless cloning), normal, mixed, or copy (plain paste, for ablations)."),
    style: bool = typer.Option(True, "--style/--no-style", help="Restyle images (painting, engraving, drawing, night...)."),
    conditions: Optional[str] = typer.Option(None, "--conditions", help="Put one image of a pair under a condition: names, groups (light, weather, depiction) or all, comma-separated (docs/synth.md lists them)."),
    condition_rate: float = typer.Option(0.5, "--condition-rate", help="Fraction of pairs that get a condition (with --conditions)."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Write a contact sheet of the first pairs here (.jpg or .png)."),
) -> None:
    """Make segment-swapping training pairs with exact masks and correspondences."""
    check_arguments(folders=[*segments, backgrounds, styles], size=size, min_size=64, output_folders=[(out, "--out")],
                    output_files=[(preview, "--preview")])
    from ..synth import generate
    from ..synth.conditions import parse_conditions

    try:
        chosen = parse_conditions(conditions)
    except ValueError as err:
        raise SegswapError(str(err)) from None
    if conditions is not None and not chosen:
        raise SegswapError("--conditions names no condition")
    summary = generate(segments, backgrounds, out, n, seed=seed, size=size, workers=workers, styles=styles,
                       unsupervised=unsupervised, negatives=negatives, blend=blend, style=style, conditions=chosen,
                       condition_rate=condition_rate, preview=preview)
    typer.echo(
        f"{summary.written} new pairs in {summary.seconds:.1f} s ({summary.pairs_per_second:.1f} pairs/s), "
        f"{summary.already_done} already there, {len(summary.failed)} failed; "
        f"{summary.segments} segments from {summary.source_images} images, {summary.backgrounds} backgrounds, "
        f"{summary.styles} style images → {out}/manifest.jsonl"
    )
    if summary.warnings:
        typer.echo(f"{len(summary.warnings)} warnings (skipped files or lines):", err=True)
        for line in summary.warnings[:20]:
            typer.echo(f"  {line}", err=True)
        if len(summary.warnings) > 20:
            typer.echo(f"  ... and {len(summary.warnings) - 20} more", err=True)
    if summary.requested and not summary.written + summary.already_done:
        raise SegswapError("no pair could be made; check the segment and background folders")


COMMANDS = {"synth": synth}
