"""``segswap eval``: thin typer commands over :mod:`segswap.evaluation`, printing Markdown tables."""

from __future__ import annotations

import shlex
import sys

from pathlib import Path
from typing import Optional

import typer

from ..collection.methods import DEFAULT_METHOD, DISCOVERY_DESIGNS
from ..errors import SegswapError
from ..shipped import KEYPOINTS, VERIFY_BY, check_verify_by
from ..cluster.engine_options import check_engine_options
from .collection import SHIPPED_HELP, index_matcher
from .common import (BACKBONE_HELP, EVAL_SIZE_HELP, FEATURE_SIZE_HELP, JSON_HELP, MODEL_HELP, WEIGHTS_HELP, check_arguments,
                      cluster_engine, load_matcher, scheduler_option, scratch_option, workers_option,
                      write_json)

HELP = "Benchmarks on real data: co-segmentation, correspondences, place recognition."


def _write_json(path: Optional[Path], result: dict) -> None:
    """``result`` as JSON, with the command line that made it (what the docs' benchmark tables show)."""
    if path is not None:
        write_json(path, {"command": shlex.join(["segswap", *sys.argv[1:]]), **result})
        typer.echo(f"wrote {path}", err=True)


LEARNED_INDEX_HELP = ("An index (`segswap index`) on which `segswap learn` ran: the pair model runs with the weights "
                      "learned there (learn on the benchmark's own images to measure as ArtMiner does, transductively).")


def _learned_weights(index_dir: Optional[Path], model: Optional[str], weights: Optional[Path], images: list[Path]):
    """``--index``'s learned weights for a benchmark on ``images``: (their folder, what they were learned on) or
    (None, None) without --index; one line when they cannot be used."""
    if index_dir is None:
        return None, None
    if weights is not None or model not in (None, "segswap"):
        raise SegswapError("--index runs the SegSwap pair model with the weights learned on that index: drop "
                           "--model/--weights, or --index")
    from ..collection.learned import benchmark_learned

    folder, record = benchmark_learned(index_dir, images)
    typer.echo(f"using the weights learned on {index_dir} ({record['benchmark_images_in_index']} of the benchmark's "
               f"{record['benchmark_images']} images are among its {record['index_images']})", err=True)
    return folder, record


def methods():
    """List the co-segmentation methods of `segswap eval coseg --method`."""
    from ..evaluation.coseg import methods as coseg_methods

    for name, method in coseg_methods().items():
        typer.echo(f"{name:<18} {method.description}")


def coseg(
    root: Path = typer.Argument(..., help="Folder with images/<group>/* and groundtruth/<group>/<stem>.png."),
    groups: Optional[list[str]] = typer.Option(None, "--groups", help="Groups to run (comma-separated or repeated; default all)."),
    method: str = typer.Option(DEFAULT_METHOD, "--method", help="Method (see `segswap eval methods`; default: as `segswap cosegment`)."),
    weights: Optional[Path] = typer.Option(None, help="Weights file for the pair-model methods (segswap, ncnet, macosnet) from `segswap export`."),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    size: Optional[int] = typer.Option(None, help=EVAL_SIZE_HELP),
    flip: bool = typer.Option(False, help="Mirrored test-time augmentation (pair-model methods)."),
    top_k: int = typer.Option(5, "--top-k", help="Partners per image in the collection graph (pair-model methods)."),
    index_dir: Optional[Path] = typer.Option(None, "--index", help=LEARNED_INDEX_HELP + " `segswap cosegment`'s "
                                             "methods that run pairs only."),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
    scheduler: Optional[str] = scheduler_option(),
    workers: Optional[int] = workers_option(),
    scratch: Optional[Path] = scratch_option(),
):
    """Co-segmentation P and J per group and their mean."""
    check_arguments(folders=[root, index_dir], weights=weights, size=size, output_files=[(json_out, "--json")],
                    counts=[(top_k, "--top-k")])
    check_engine_options(scheduler, workers, scratch, needs_scratch=True)
    from ..evaluation.coseg import MethodOptions, check_cluster_method, evaluate_coseg
    from ..evaluation.tables import coseg_table

    if scheduler or workers:
        check_cluster_method(method)
    names = [g.strip() for item in groups or [] for g in item.split(",") if g.strip()]
    learned, record = None, None
    if index_dir is not None:
        from ..collection.methods import COSEG_METHODS
        from ..evaluation.coseg import read_coseg_benchmark

        if method not in COSEG_METHODS or not COSEG_METHODS[method].pairs:
            raise SegswapError(f"--index runs the pair model with learned weights; method {method!r} runs none (these "
                               f"do: {', '.join(n for n, m in COSEG_METHODS.items() if m.pairs)})")
        items = [item.image for group in read_coseg_benchmark(root, names or None).values() for item in group]
        learned, record = _learned_weights(index_dir, None, weights, items)
    with cluster_engine(scheduler, workers, scratch) as engine:
        options = MethodOptions(weights=weights, learned=learned, backbone=backbone, size=size, flip=flip, top_k=top_k,
                                engine=engine)
        result = evaluate_coseg(root, method, names or None, options)
    if record is not None:
        result["learned"] = record
    typer.echo(coseg_table(result))
    _write_json(json_out, result)


def corr(
    root: Path = typer.Argument(..., help="Folder with img1..imgK and the homographies H1toKp."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    size: Optional[int] = typer.Option(None, help=EVAL_SIZE_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Correspondence accuracy img1 → imgK against the true homography, beside SIFT (ratio test, RANSAC)."""
    check_arguments(folders=[root], weights=weights, size=size, output_files=[(json_out, "--json")])
    from ..evaluation.corr import evaluate_correspondences
    from ..evaluation.tables import corr_table

    result = evaluate_correspondences(root, load_matcher(model, weights, backbone=backbone, size=size))
    typer.echo(corr_table(result))
    _write_json(json_out, result)


def synthetic(
    pairs: list[Path] = typer.Argument(..., help="`segswap synth` folders the model was not trained on."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    flip: bool = typer.Option(False, "--flip", help="Also run each pair mirrored and average (as `segswap pair --flip`)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Mask IoU and correspondence error (in cells) on held-out synthetic pairs, at the pairs' own size."""
    check_arguments(folders=pairs, weights=weights, output_files=[(json_out, "--json")])
    from ..evaluation.synthetic import evaluate_synthetic
    from ..synth.reader import pairs_size
    from ..evaluation.tables import synthetic_table

    result = evaluate_synthetic(pairs, load_matcher(model, weights, size=pairs_size(pairs)), flip=flip)
    typer.echo(synthetic_table(result))
    _write_json(json_out, result)


def calibrate_search(
    pairs: list[Path] = typer.Argument(..., help="`segswap synth` folders the model was not trained on."),
    out: Path = typer.Option(..., help="Calibration file to add the result to (the package's own is "
                                       "src/segswap/data/search_calibration.json)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    precision: float = typer.Option(0.95, help="Precision 'match' must reach on the pairs (0–1)."),
    keypoints: bool = typer.Option(True, "--keypoints/--no-keypoints", help="Also calibrate the inliers of the "
                                   "keypoints an index stores (search fuses the two)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON."),
):
    """The matched fraction from which `segswap search` says 'match', and the keypoint inliers, calibrated on
    held-out synthetic pairs (each pair against image b of other pairs, half of those showing the same class
    of object)."""
    check_arguments(folders=pairs, weights=weights, output_files=[(out, "--out"), (json_out, "--json")])
    if not 0 < precision < 1:
        raise SegswapError(f"--precision must be between 0 and 1, not {precision}")
    from ..shipped import INDEX_KEYPOINTS

    if keypoints:
        from ..keypoints import check_installed

        check_installed(INDEX_KEYPOINTS[0])
    from ..evaluation.calibration import add_calibration, calibrate_search as run_calibration, calibrate_search_keypoints
    from ..synth.reader import pairs_size

    results = [run_calibration(pairs, load_matcher(model, weights, size=pairs_size(pairs)), target_precision=precision)]
    if keypoints:
        from ..keypoints import get_matcher

        keypointer = get_matcher(INDEX_KEYPOINTS[0], **INDEX_KEYPOINTS[1])
        results.append(calibrate_search_keypoints(pairs, keypointer, target_precision=precision))
    for result in results:
        add_calibration(out, result)
        what = "a matched fraction" if result["model"] != "keypoints" else f"{result['keypoints']} inliers"
        typer.echo(f"{result['weights'] or result['keypoints']}: 'match' from {what} of {result['threshold']:.4f} — "
                   f"precision {result['precision']:.3f}, recall {result['recall']:.3f}, AP "
                   f"{result['average_precision']:.3f} on {result['positives']} pairs and {result['negatives']} "
                   f"non-matching pairs → {out}")
    _write_json(json_out, results if len(results) > 1 else results[0])


def calibrate_verify(
    pairs: list[Path] = typer.Argument(..., help="`segswap synth --conditions ...` folders SCOTT was not trained on."),
    out: Path = typer.Option(..., help="Calibration file to add the result to (the package's own is "
                                       "src/segswap/data/verify_calibration.json)."),
    by: str = typer.Option(VERIFY_BY[0], "--by", help=f"The verdict to calibrate: {', '.join(VERIFY_BY)} (as "
                                                     "`segswap verify --by`)."),
    keypoints: Optional[str] = typer.Option(None, "--keypoints", help="Keypoint matcher of the fused and keypoints "
                                            "verdicts (default: segswap verify's)."),
    weights: Optional[Path] = typer.Option(None, help="Weights of that verdict's model from `segswap export` (default: shipped)."),
    precision: float = typer.Option(0.95, help="Precision 'match' must reach on the pairs (0–1)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON."),
):
    """The score from which `segswap verify` says 'match', calibrated on held-out synthetic pairs across
    conditions (each pair against image b of other pairs, half of those the same class); for the fused
    verdict, its two thresholds together."""
    check_arguments(folders=pairs, weights=weights, output_files=[(out, "--out"), (json_out, "--json")])
    if not 0 < precision < 1:
        raise SegswapError(f"--precision must be between 0 and 1, not {precision}")
    check_verify_by(by)
    _check_keypoint_names(keypoints, allow_all=False)
    from ..evaluation.calibration import add_calibration, calibrate_verify as run_calibration
    from ..synth.reader import pairs_size
    from ..verify.same_object import load_fused_verifier, load_keypoint_verifier, load_same_object_verifier

    # the thresholds are what is measured: any valid ones will do here
    size = pairs_size(pairs)
    if by == "fused":
        verifier = load_fused_verifier(weights, keypoints=keypoints, size=size, pair_threshold=0.5, inlier_threshold=1)
    elif by == "keypoints":
        verifier = load_keypoint_verifier(keypoints, threshold=1)
    else:
        verifier = load_same_object_verifier(by, weights, threshold=0.5, size=size)
    result = run_calibration(pairs, verifier, target_precision=precision)
    add_calibration(out, result)
    value = (f"inliers >= {result['inlier_threshold']} or a pair score >= {result['pair_score_threshold']:.4f}"
             if by == "fused" else f"a score of {result['threshold']:.4f}")
    typer.echo(f"{result['weights']}: 'match' from {value} — precision {result['precision']:.3f}, recall "
               f"{result['recall']:.3f}, AP {result['average_precision']:.3f} on {result['positives']} pairs and "
               f"{result['negatives']} non-matching pairs ({result['same_class_negatives']} of the same class) → {out}")
    _write_json(json_out, result)


def _check_keypoint_names(text: Optional[str], allow_all: bool = True) -> tuple[str, ...]:
    """``--keypoints`` of the benchmarks: names separated by commas, ``all`` (every installed matcher) or
    ``none``; each checked, and installed, before any work."""
    from ..keypoints import NONE, check_installed, check_matcher_name, is_installed, matcher_names

    if text is None:
        return ()
    if text == NONE:
        return ()
    if allow_all and text == "all":
        return tuple(name for name in matcher_names() if is_installed(name))
    names = tuple(part.strip() for part in text.split(","))
    if not allow_all and len(names) != 1:
        raise SegswapError(f"--keypoints takes one matcher name here, not {text!r}")
    for name in names:
        check_matcher_name(name)
        check_installed(name)
    return names


def conditions(
    segments: list[Path] = typer.Option(..., "--segments", help="Segment sources, as for `segswap synth` (training material, never eval images)."),
    backgrounds: Path = typer.Option(..., "--backgrounds", help="Background photos, as for `segswap synth`."),
    work: Path = typer.Option(..., "--work", help="Folder for the benchmark's pairs and features (reused by a later run)."),
    n: int = typer.Option(60, "-n", help="Pairs per condition."),
    only: Optional[str] = typer.Option(None, "--conditions", help="Conditions to run, comma-separated (default all)."),
    seed: int = typer.Option(201, "--seed", help="Seed of the held-out pairs (never one used in training: 1, 2)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    verify_by: str = typer.Option(VERIFY_BY[0], "--verify-by", help="The verdict measured as `segswap verify`'s: "
                                  f"{' or '.join(VERIFY_BY)} (as `segswap verify --by`)."),
    verify_weights: Optional[Path] = typer.Option(None, "--verify-weights", help="Weights of that verdict: "
                                                  "transformer weights for pair-score, SCOTT's for scott (default: shipped)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes making pairs (default: all cores)."),
    keypoints: str = typer.Option(KEYPOINTS, "--keypoints", help="Keypoint matchers whose inliers' AP is reported beside "
                                  "the pair model: names separated by commas, 'all' (every installed one) or 'none'."),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Per condition (night, haze, engraving, ...; one image of each pair changed): mask IoU, correspondence
    error, and same/different AP of the pair score, of each keypoint matcher's inliers and of `segswap
    verify`, on held-out synthetic pairs."""
    check_arguments(folders=[*segments, backgrounds], files=[verify_weights], weights=weights,
                    output_folders=[(work, "--work")], output_files=[(json_out, "--json")])
    if n < 4:
        raise SegswapError(f"-n must be at least 4 pairs per condition (got {n})")
    check_verify_by(verify_by, "--verify-by")
    matchers = _check_keypoint_names(keypoints)
    from ..evaluation.condition_benchmark import evaluate_conditions
    from ..evaluation.tables import conditions_table
    from ..synth.conditions import parse_conditions
    from ..verify.same_object import load_same_object_verifier

    try:
        names = parse_conditions(only) if only is not None else None
    except ValueError as err:
        raise SegswapError(str(err)) from None
    matcher = load_matcher(model, weights)
    verifier = load_same_object_verifier(verify_by, verify_weights, size=matcher.size)
    result = evaluate_conditions(segments, backgrounds, work, matcher, verifier, n=n, conditions=names, seed=seed,
                                 workers=workers, keypoints=matchers)
    typer.echo(conditions_table(result))
    _write_json(json_out, result)


def vpr(
    root: Path = typer.Argument(..., help="VPR-Bench folder: query/, ref/, ground_truth_new.npy."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    size: Optional[int] = typer.Option(None, help=EVAL_SIZE_HELP),
    shortlist: Optional[int] = typer.Option(None, help="How many global-descriptor candidates each re-ranking "
                                                       "reorders (default 20)."),
    keypoints: str = typer.Option(KEYPOINTS, "--keypoints", help="Keypoint matchers whose inliers re-rank too: names "
                                  "separated by commas, 'all' (every installed one) or 'none'."),
    index_dir: Optional[Path] = typer.Option(None, "--index", help=LEARNED_INDEX_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Recall@1/5/10: global descriptor, re-ranked by the pair score, by each keypoint matcher's inliers and
    by SIFT + RANSAC inliers."""
    check_arguments(folders=[root, index_dir], weights=weights, size=size, output_files=[(json_out, "--json")])
    matchers = _check_keypoint_names(keypoints)
    from ..evaluation.tables import vpr_table
    from ..evaluation.vpr import evaluate_vpr, read_vpr_benchmark

    learned, record = None, None
    if index_dir is not None:
        bench = read_vpr_benchmark(root)
        learned, record = _learned_weights(index_dir, model, weights, bench.queries + bench.references)
    if learned is not None:
        from ..pair import load

        matcher = load(backbone=backbone, size=size, learned=learned)
    else:
        matcher = load_matcher(model, weights, backbone=backbone, size=size)
    result = evaluate_vpr(root, matcher, keypoints=matchers, **({} if shortlist is None else {"shortlist": shortlist}))
    if record is not None:
        result["learned"] = record
    typer.echo(vpr_table(result))
    _write_json(json_out, result)


def same_place(
    root: Path = typer.Argument(..., help="VPR-Bench folder: query/, ref/, ground_truth_new.npy."),
    scott_weights: Optional[Path] = typer.Option(None, help="SCOTT weights (default: shipped)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP + " Its pair score is compared with SCOTT."),
    weights: Optional[Path] = typer.Option(None, help="Pair-model weights file from `segswap export`."),
    negatives: Optional[int] = typer.Option(None, help="Wrong references per query, half the most similar by global "
                                                       "descriptor (default 6)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Same place or not on query–reference pairs: SCOTT, the pair score and ArtMiner's verification
    (precision, recall, F1, average precision)."""
    check_arguments(folders=[root], files=[scott_weights], weights=weights, output_files=[(json_out, "--json")])
    from ..evaluation.same_place import evaluate_same_place
    from ..evaluation.tables import same_place_table
    from ..verify.same_object import load_verifier

    verifier = load_verifier(scott_weights)
    matcher = load_matcher(model, weights)
    result = evaluate_same_place(root, verifier, matcher, **({} if negatives is None else {"negatives": negatives}))
    typer.echo(f"{result['pairs']} pairs, {result['positives']} same place")
    typer.echo(same_place_table(result))
    _write_json(json_out, result)


def align(
    root: Path = typer.Argument(..., help="Folder with img1..imgK and the homographies H1toKp."),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    size: Optional[int] = typer.Option(None, help=FEATURE_SIZE_HELP),
    scales: list[int] = typer.Option([1, 7], "--scales", help="Numbers of resizes of imgK to compare (repeatable)."),
    keypoints: str = typer.Option("all", "--keypoints", help="Keypoint matchers to report (their homography, and "
                                  "`segswap align --keypoints` with it): names separated by commas, 'all' (every "
                                  "installed one) or 'none'."),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Homography corner error img1 → imgK: `segswap align` by backbone features at each --scales and by each
    keypoint matcher, beside SIFT + RANSAC."""
    check_arguments(folders=[root], size=size, output_files=[(json_out, "--json")])
    matchers = _check_keypoint_names(keypoints)
    from ..evaluation.homography import evaluate_alignment
    from ..evaluation.tables import alignment_table

    result = evaluate_alignment(root, backbone=backbone, scale_counts=tuple(scales), keypoints=matchers,
                                **({} if size is None else {"size": size}))
    typer.echo(alignment_table(result))
    _write_json(json_out, result)


def discover(
    root: Path = typer.Argument(..., help="Folder with images/ and truth.json (the true pairs, their kinds, boxes)."),
    work: Path = typer.Option(..., "--work", help="Folder for the collection's index (reused by a later run)."),
    design: str = typer.Option(DISCOVERY_DESIGNS[0], help="Discovery design, as `segswap discover --design` (default: its default)."),
    top_k: Optional[int] = typer.Option(None, help="As `segswap discover --top-k` (default: the design's)."),
    min_evidence: float = typer.Option(1.0, "--min-evidence", help="As `segswap discover --min-evidence`."),
    clusters: Optional[int] = typer.Option(None, help="As `segswap discover --clusters` (spectral)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    shipped: bool = typer.Option(False, "--shipped", help=SHIPPED_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Discovery against known repeats: pair recall (overall and per kind), pair precision, distinct
    patterns, region precision; the collection is indexed (or its index updated) in --work."""
    check_arguments(folders=[root], weights=weights, output_folders=[(work, "--work")], output_files=[(json_out, "--json")],
                    counts=[(top_k, "--top-k"), (clusters, "--clusters")])
    from ..collection.methods import check_design

    check_design(design, clusters, min_evidence)
    from ..evaluation.discovery import read_discovery_truth

    truth = read_discovery_truth(root)
    from ..collection.discover import discovery_json, run_discovery
    from ..collection.update import update_index
    from ..evaluation.discovery import discovery_scores, relative_patterns

    index, _ = update_index(root / "images", work / "index")
    matcher = index_matcher(model, weights, index.backbone, index.size, index, shipped)
    found = discovery_json(run_discovery(index, matcher, design=design, top_k=top_k, clusters=clusters,
                                         min_evidence=min_evidence))
    scores = discovery_scores(relative_patterns(found["patterns"], root / "images"), truth)
    result = {"root": str(root), "design": design, "summary": found["summary"], **scores,
              "patterns_found": found["patterns"]}
    typer.echo(found["summary"])
    typer.echo(f"pair recall {scores['pair_recall']} ({scores['pairs_found']}/{scores['true_pairs']}), pair precision "
               f"{scores['pair_precision']}, distinct patterns {scores['distinct_patterns']}, region precision "
               f"{scores['region_precision']} ({scores['regions_with_truth']} regions); by kind: "
               + ", ".join(f"{k} {v}" for k, v in scores["recall_by_kind"].items()))
    _write_json(json_out, result)


def details(
    root: Path = typer.Argument(..., help="Folder with images/ and truth.json (queries: a box, its copies' boxes)."),
    work: Path = typer.Option(..., "--work", help="Folder for the collection's index (reused by a later run)."),
    top: int = typer.Option(10, help="Results per query, as `segswap search --top`."),
    keypoints: bool = typer.Option(True, "--keypoints/--no-keypoints", help="As `segswap search --keypoints`."),
    details: Optional[bool] = typer.Option(None, "--details/--no-details", help="As `segswap index --details` "
                                           "(default: keep what the index in --work has)."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    shipped: bool = typer.Option(False, "--shipped", help=SHIPPED_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help=JSON_HELP),
):
    """Detail search against known copies: each query's box searched with `segswap search --box`; mAP of
    the rankings and the share of copies returned with their box (IoU ≥ 0.5, ≥ 0.3), by kind; the
    collection is indexed (or its index updated) in --work."""
    check_arguments(folders=[root], weights=weights, output_folders=[(work, "--work")], output_files=[(json_out, "--json")],
                    counts=[(top, "--top")])
    from ..evaluation.details import read_detail_truth

    queries = read_detail_truth(root)
    from ..collection.search import search
    from ..collection.update import update_index
    from ..evaluation.details import detail_scores
    from tqdm import tqdm

    index, _ = update_index(root / "images", work / "index", keypoints=keypoints or None, details=details)
    matcher = index_matcher(model, weights, index.backbone, index.size, index, shipped)
    images = (root / "images").resolve()
    results = []
    for query in tqdm(queries, desc="searching details", unit="query"):
        found = search(index, images / query.image, matcher, box=query.box, top=top + 1, keypoints=keypoints)
        hits = [(str(h.image.path.resolve().relative_to(images)), h.box) for h in found.hits]
        results.append([(image, box) for image, box in hits if image != query.image][:top])
    scores = detail_scores(queries, results)
    typer.echo(f"mAP {scores['map']}; box found (IoU ≥ 0.5) {scores['box_found']}, (≥ 0.3) {scores['box_found_iou_0_3']} "
               f"of {scores['target_pairs']} copies; mean IoU {scores['mean_iou']}; by kind: "
               + ", ".join(f"{k} {v}" for k, v in scores["box_found_by_kind"].items()))
    _write_json(json_out, {"root": str(root), "top": top, "keypoints": keypoints,
                           "details": index.detail_keypoint_settings is not None, **scores,
                           "results": [{"query": q.image, "box": list(q.box),
                                        "hits": [{"image": i, "box": list(b) if b else None} for i, b in r]}
                                       for q, r in zip(queries, results)]})


COMMANDS = {"details": details, "discover": discover, "methods": methods, "coseg": coseg, "corr": corr, "synthetic": synthetic, "calibrate-search": calibrate_search,
            "calibrate-verify": calibrate_verify, "conditions": conditions, "vpr": vpr, "same-place": same_place, "align": align}
