"""The ``segswap align`` and ``segswap verify`` commands, thin typer wrappers over
:mod:`segswap.verify.align` and :mod:`segswap.verify.same_object`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import SegswapError
from ..shipped import KEYPOINTS, VERIFY_BY, check_verify_by
from .common import BACKBONE_HELP, FEATURE_SIZE_HELP, MODEL_HELP, WEIGHTS_HELP, check_arguments, load_matcher, write_json


def align(
    image_a: Path = typer.Argument(..., help="Image to warp."),
    image_b: Path = typer.Argument(..., help="Reference image: the homography maps a's pixels to b's."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for result.json, warped.png, side_by_side.png, blend.png."),
    size: Optional[int] = typer.Option(None, help=FEATURE_SIZE_HELP),
    scales: Optional[int] = typer.Option(None, help="Resizes of b whose features are matched (default RANSAC-Flow's 7, "
                                                    "×1.2 to ÷1.2); 1 is ≈4× faster."),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    shared_only: bool = typer.Option(False, "--shared-only", help="Match only inside the pair model's co-segmentation "
                                                                  "masks: align what the two images share."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP + " With --shared-only; without it, a model with a "
                                                                 "warp of its own (macosnet) aligns the pair by its warp."),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP + " With --shared-only, or of a warp model."),
    keypoints: Optional[str] = typer.Option(None, "--keypoints", help="Keypoint matcher whose homography (refined "
                                            "once) aligns the pair where it has support, or 'none' for backbone "
                                            f"features only (default: {KEYPOINTS} where installed)."),
):
    """Align two images by a homography (learned keypoints where they agree on one, else RANSAC-Flow's coarse
    stage on backbone features), or by a warp model's own warp (--model macosnet)."""
    check_arguments(files=[image_a, image_b], weights=weights, size=size, output_folders=[(out, "--out")])
    from ..keypoints import resolve_keypoints

    keypoint_name = resolve_keypoints(keypoints)  # a wrong name or a missing wheel: one line, before any model
    from ..models import WARP_MODELS
    from ..models.weights import read_config
    from ..verify.align import align as run_align, align_by_warp, write_alignment, write_warp

    if (model or weights) and not shared_only:
        name = read_config(weights)["model"] if weights else model
        if name not in WARP_MODELS:
            raise SegswapError(f"model {name!r} has no warp of its own: --model and --weights choose the pair model of "
                               f"--shared-only; add --shared-only (or use --model {' or '.join(sorted(WARP_MODELS))})")
        if scales is not None or backbone is not None or keypoints is not None:
            raise SegswapError("--scales, --backbone and --keypoints are the homography's; a warp model uses its own "
                               "backbone and one view")
        matcher = load_matcher(model, weights, size=size)
        rgb_a, rgb_b, warped, result = align_by_warp(image_a, image_b, matcher)
        written = write_warp(out, rgb_a, rgb_b, warped, result, {"image_a": str(image_a), "image_b": str(image_b),
                                                                   "model": matcher.name})
        typer.echo(f"warped by {matcher.name} (masks cover {written['mask_area_a']:.0%} of a, "
                   f"{written['mask_area_b']:.0%} of b) → {out}")
        return
    from ..keypoints import get_matcher

    matcher = load_matcher(model, weights) if shared_only else None
    keypoint_matcher = get_matcher(keypoint_name) if keypoint_name else None
    aligned = run_align(image_a, image_b, backbone=backbone, size=size, scales=scales, matcher=matcher,
                        keypoints=keypoint_matcher)
    result = write_alignment(out, aligned, {"image_a": str(image_a), "image_b": str(image_b),
                                            "model": matcher.name if matcher else None})
    source = (f"{keypoint_name} keypoints" if aligned.stage.startswith("keypoints") else
              "backbone features" + (f" ({keypoint_name}: too few inliers)" if keypoint_name else ""))
    typer.echo(f"homography from {result['inliers']} inliers of {result['matches']} matches of {source} → {out}")


BY_HELP = {
    "fused": "the pair score and the keypoint matcher's homography inliers, either enough (their two thresholds "
             "calibrated together); the verdict names the evidence that decided it",
    "pair-score": "the SegSwap transformer's pair score over segswap pair's views (the share of a that matches b), by "
                  "its frozen-feature weights (segswap-verify.safetensors)",
    "keypoints": "the keypoint matcher's homography inliers alone (a rigid copy: the same object, place or print)",
    "scott": "SCOTT's same-object probability, which says 'match' almost never (at its calibrated threshold, recall "
             "0.01 on held-out pairs across conditions)",
}


def verify(
    image_a: Path = typer.Argument(..., help="First image."),
    image_b: Path = typer.Argument(..., help="Second image."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the verdict as JSON (keys by, match, "
                                                                  "score, threshold, evidence, ...)."),
    by: str = typer.Option(VERIFY_BY[0], "--by", help="; ".join(f"{name}{' (default)' if name == VERIFY_BY[0] else ''}: "
                                                             f"{BY_HELP[name]}" for name in VERIFY_BY) + "."),
    keypoints: Optional[str] = typer.Option(None, "--keypoints", help=f"Keypoint matcher of the fused and keypoints "
                                            f"verdicts (default: {KEYPOINTS})."),
    threshold: Optional[float] = typer.Option(None, help="Decide 'match' at a score >= this (default: the threshold "
                                                         "`segswap eval calibrate-verify` recorded for these weights: "
                                                         "precision 0.95 on held-out pairs across conditions; for "
                                                         "fused, 1 on the fused score)."),
    weights: Optional[Path] = typer.Option(None, help="Weights of the --by model from `segswap export` (default: shipped)."),
    size: Optional[int] = typer.Option(None, help="Input long side in px, a multiple of 16 (default: training size)."),
):
    """Same object or not: a calibrated verdict on two images, with the evidence behind it."""
    check_arguments(files=[image_a, image_b], weights=weights, size=size, output_files=[(json_out, "--json")])
    check_verify_by(by)
    if keypoints is not None:
        if by not in ("fused", "keypoints"):
            raise SegswapError(f"--keypoints chooses the matcher of --by fused or keypoints, not of --by {by}")
        from ..keypoints import check_installed, check_matcher_name

        check_matcher_name(keypoints)
        check_installed(keypoints)
    from ..verify.same_object import load_same_object_verifier

    verifier = load_same_object_verifier(by, weights, threshold=threshold, size=size, keypoints=keypoints)
    verdict = {"image_a": str(image_a), "image_b": str(image_b), **verifier.verify(image_a, image_b)}
    point = verdict["operating_point"]
    where = (f" (calibrated: precision {point['precision']:.2f}, recall {point['recall']:.2f} on held-out pairs)"
             if point and verdict["threshold_source"] == "calibrate-verify" else "")
    typer.echo(f"match: {'yes' if verdict['match'] else 'no'}  {_evidence_line(verdict)}{where}")
    if json_out is not None:
        write_json(json_out, verdict)


def _evidence_line(verdict: dict) -> str:
    """What the verdict rests on, in words: each piece of evidence with its threshold."""
    def keypoints(inliers, threshold, matcher):
        return f"{inliers} homography inliers of {matcher} (threshold {threshold:g})"

    def pair_score(score, threshold, scale):
        return f"pair score {score:.4f} (share of a matched, best view ×{scale:g}; threshold {threshold:.4f})"

    by = verdict["by"]
    if by == "fused":
        pieces = verdict["evidence"]
        kp, ps = pieces["keypoints"], pieces["pair_score"]
        decided = " + ".join(n.replace("_", " ") for n in verdict["decided_by"]) if verdict["decided_by"] else "neither"
        return (f"by {decided}: {keypoints(kp['inliers'], kp['threshold'], kp['matcher'])}; "
                f"{pair_score(ps['score'], ps['threshold'], ps['scale'])}")
    if by == "keypoints":
        return keypoints(verdict["inliers"], verdict["threshold"], verdict["matcher"])
    if by == "pair-score":
        return pair_score(verdict["score"], verdict["threshold"], verdict["scale"])
    why = " (no co-salient region found)" if verdict["empty"] else ""
    return f"SCOTT probability {verdict['probability']:.3f}  threshold {verdict['threshold']:.4f}{why}"


COMMANDS = {"align": align, "verify": verify}
