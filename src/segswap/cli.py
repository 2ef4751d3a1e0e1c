"""The ``segswap`` command: thin typer commands over the package's functions, no logic of its own."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from . import __version__, cli_collection, cli_eval, cli_synth, cli_verify
from .cli_common import MODEL_HELP, SIZE_HELP, WEIGHTS_HELP, App, check_arguments, load_matcher
from .errors import SegswapError
from .shipped import SEARCH_SCALES

app = App(help="Find what images have in common: co-segmentation masks and dense correspondences.")


def _version(value: bool):
    if value:
        typer.echo(f"segswap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")):
    pass


#: `segswap pair --scales` default: the same views as ``Matcher.match``'s.
SCALES_OPTION_DEFAULT = ",".join(f"{scale:g}" for scale in SEARCH_SCALES)


@app.command()
def pair(
    image_a: Path = typer.Argument(..., help="First image (the query)."),
    image_b: Path = typer.Argument(..., help="Second image."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for mask_a.png, mask_b.png, overlay.png, result.json."),
    size: Optional[int] = typer.Option(None, help=SIZE_HELP),
    backbone: Optional[str] = typer.Option(None, help="Feature backbone (see `segswap backbones`)."),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    flip: bool = typer.Option(False, help="Also run the pair mirrored and average (test-time augmentation)."),
    scales: str = typer.Option(SCALES_OPTION_DEFAULT, help="Relative sizes of b's content to a's to try, comma-separated "
                               "(e.g. 2 when the detail is twice as large in b); the most confident view wins. '1': one view."),
    rotations: bool = typer.Option(False, help="Also try b turned by 90°, 180° and 270° (4× the views)."),
):
    """Match two images: where they share content, and which pixel goes where."""
    check_arguments(files=[image_a, image_b], weights=weights, size=size, output_folders=[(out, "--out")])
    from .pair import load, parse_scales
    from .report import write_pair_outputs

    scale_list = parse_scales(scales)
    matcher = load(model, weights, backbone=backbone, size=size)
    result = matcher.match(image_a, image_b, flip=flip, scales=scale_list, rotations=rotations)
    _print_pair_summary(write_pair_outputs(out, image_a, image_b, result), out)


@app.command()
def demo(out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for the results.")):
    """Match the two sample images shipped with segswap (a box, and the box in a cluttered scene)."""
    check_arguments(output_folders=[(out, "--out")])
    from .report import write_pair_outputs

    data = resources.files("segswap") / "data"
    image_a, image_b = Path(str(data / "box.png")), Path(str(data / "box_in_scene.png"))
    result = load_matcher(None, None).match(image_a, image_b)
    _print_pair_summary(write_pair_outputs(out, image_a, image_b, result), out)


def _print_pair_summary(summary: dict, out: Path) -> None:
    """The one-line summary of `segswap pair` and `segswap demo`."""
    view = summary["view"]
    chosen = (f"; view b ×{view['scale']:g}, turned {view['rotation_deg']}° (best of {view['views_tried']})"
              if view["views_tried"] > 1 else "")
    typer.echo(f"model {summary['model']} on {summary['backbone']}: score {summary['score']:.3f}, shared area "
               f"a {summary['mask_area_a']:.1%}, b {summary['mask_area_b']:.1%}, "
               f"{len(summary['correspondences'])} correspondences{chosen} → {out}/ (overlay.png, mask_a.png, "
               "mask_b.png, result.json)")


@app.command()
def backbones(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the feature backbones and the objectness prior, and whether their packages are installed."""
    from .backbone import DEFAULT_BACKBONE, list_backbones

    rows = list_backbones()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False)
    for column in ("backbone", "channels", "installed", "description"):
        table.add_column(column, justify="right" if column == "channels" else "left")
    for row in rows:
        state = "yes" if row["installed"] else f"no: {row['install']}"
        default = " (default)" if row["name"] == DEFAULT_BACKBONE else " (prior)" if row["kind"] == "prior" else ""
        table.add_row(row["name"] + default, str(row["channels"]), state, row["description"])
    console = Console()
    if not console.is_terminal:  # piped: one row per line, not wrapped at 80 columns
        console.width = 10_000
    console.print(table)


@app.command("train")
def train_command(
    pairs: list[Path] = typer.Option(..., "--pairs", help="A `segswap synth` output folder (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: recipe, checkpoint, logs, curves."),
    config: str = typer.Option("default", help="Training recipe name (see docs/training.md)."),
    steps: Optional[int] = typer.Option(None, help="Main-stage steps (overrides the recipe)."),
    size: Optional[int] = typer.Option(None, help="Input size the pairs were made at (overrides the recipe)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    val_coseg: Optional[Path] = typer.Option(None, help="Co-segmentation benchmark for pairwise validation "
                                                         "(images/<group>/, groundtruth/<group>/); never trained on."),
    model_option: list[str] = typer.Option([], "--model-option", help="KEY=VALUE overriding one of the recipe's "
                                           "model options, VALUE as JSON (e.g. tail_lr_scale=0.1; repeatable)."),
    seed: Optional[int] = typer.Option(None, help="Random seed of initialisation, batches and the held-out split "
                                                  "(overrides the recipe's 0; for replicate runs)."),
):
    """Train the cross-image transformer on synthetic pairs (features are cached inside each pairs folder)."""
    check_arguments(folders=[*pairs, val_coseg], size=size, output_folders=[(out, "--out")])
    from .train.loop import train

    if (model_option or seed is not None) and resume:
        raise SegswapError("--model-option, --seed: a resumed run keeps the options it was started with")
    overrides = {"size": size, "seed": seed, "model_conf": dict(_key_value(o) for o in model_option) or None}
    metrics = train(pairs, out, config=config, steps=steps, resume=resume, overrides=overrides, val_coseg=val_coseg)
    typer.echo("done: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "step"))


def _key_value(option: str) -> tuple[str, object]:
    key, sep, value = option.partition("=")
    if not sep or not key:
        raise SegswapError(f"--model-option {option!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare word is a string


@app.command("export")
def export_command(
    run_dir: Path = typer.Argument(..., help="A `segswap train` run folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Weights file to write (.safetensors)."),
):
    """Write a run's model as a safetensors weights file that `segswap.load(weights=...)` reads."""
    check_arguments(folders=[run_dir], output_files=[(out, "--out")])
    from .train.loop import export

    config = export(run_dir, out)
    typer.echo(f"wrote {out} (model {config['model']}, backbone {config['backbone']}, size {config['size']}, "
               f"recipe {config['recipe']})")


# Commands kept in their own modules, registered after the ones above (this order is --help's).
app.command("synth")(cli_synth.synth)
app.add_typer(cli_eval.eval_app, name="eval")
cli_collection.register(app)
cli_verify.register(app)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        app(prog_name="segswap")
    except SegswapError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
