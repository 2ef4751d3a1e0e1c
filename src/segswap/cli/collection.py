"""The collection commands — index, search, discover, cosegment — as thin typer wrappers over
:mod:`segswap.collection`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import BackboneMismatchError, SegswapError
from ..grid import DEFAULT_SIZE, STRIDE
from ..io.paths import is_image_name
from ..progress import stage
from ..cluster.engine_options import check_engine_options
from ..collection.methods import COSEG_METHODS, DEFAULT_METHOD, DISCOVERY_DESIGNS, check_design
from .common import (BACKBONE_HELP, FLIP_HELP, MODEL_HELP, REPORT_HELP, SIZE_HELP, WEIGHTS_HELP, check_arguments,
                      check_finite, cluster_engine, load_matcher, parse_box, scheduler_option, scratch_option,
                      workers_option, write_json)


ANNOTATIONS_HELP = ("Write the results as a W3C Web Annotation page (IIIF Presentation 3 AnnotationPage) for IIIF "
                    "viewers: each targets its canvas's region (canvas-id#xywh=...), with the verdict and score in its "
                    "body (an index made from a IIIF manifest; docs/iiif.md).")


def check_annotations(index_dir: Path) -> None:
    """Refuse --annotations, before any model loads, on an index without canvases or without the writer."""
    from ..collection.index import CollectionIndex
    from ..iiif.annotations import check_writer

    check_writer()
    with CollectionIndex(index_dir) as collection:
        if not collection.canvases():
            raise SegswapError(f"--annotations: {index_dir} holds no IIIF canvas (it indexes a folder); index a IIIF "
                               "manifest to annotate its canvases: segswap index MANIFEST --index IDX")


SHIPPED_HELP = ("Run the shipped pair model even where the index holds weights learned on its images (`segswap "
                "learn`), which are used by default.")


def index_matcher(model, weights, backbone: str, size: int, collection=None, shipped: bool = False):
    """The pair model run on an index's features (its backbone and size), or one line saying what to do. With
    the default model, the weights `segswap learn` learned on ``collection`` (an open index) unless ``shipped``."""
    learned = None
    if collection is not None:
        from ..collection.learned import learned_for

        learned = learned_for(collection, model, weights, shipped)
        if learned is not None:
            typer.echo(f"using the weights learned on this collection ({learned}; --shipped: the shipped ones)", err=True)
    try:
        if learned is not None:
            from ..pair import load

            return load(backbone=backbone, size=size, learned=learned)
        return load_matcher(model, weights, backbone=backbone, size=size)
    except BackboneMismatchError as err:
        raise SegswapError(f"{err}, and the index holds {backbone} features: index the folder again into a new "
                           f"index with --backbone {err.trained}, or choose a model trained on {backbone}") from None


def learn(
    index_dir: Path = typer.Option(..., "--index", help="Index folder from `segswap index`: the collection to learn on."),
    minutes: float = typer.Option(20.0, help="Time budget in minutes, split between the two stages (about 20 minutes "
                                             "suits 1,000 images on 2 cores)."),
    steps: Optional[int] = typer.Option(None, help="Updates per stage instead of a time budget (reproducible: the same "
                                                   "seed gives the same weights)."),
    seed: int = typer.Option(0, help="Random seed of the mined patches and negatives."),
):
    """Learn features on this collection's own images, without labels (ArtMiner), then adapt the pair model to
    them. The weights go into the index; search, discover, cosegment --index and the viewer use them there
    (--shipped: not). Run it again to continue a killed run."""
    check_arguments(folders=[index_dir], counts=[(steps, "--steps")])
    if not minutes > 0:
        raise SegswapError(f"--minutes must be above 0, got {minutes}")
    from ..collection.index import CollectionIndex
    from ..train.collection_learning import learn_collection  # which refuses, before any work, what it cannot learn on

    with CollectionIndex(index_dir, snapshot=False) as collection:
        matcher = load_matcher(None, None, backbone=collection.backbone, size=collection.size)
        summary = learn_collection(collection, matcher, minutes=minutes, steps=steps, seed=seed)
    typer.echo(summary.line())
    typer.echo(f"{index_dir}: learned weights written (search, discover, cosegment --index and serve use them)")


def index(
    source: str = typer.Argument(..., metavar="FOLDER|MANIFEST", help="Folder of images (searched recursively), or a "
                                 "IIIF Presentation 2.1 or 3.0 manifest or collection: an http(s) URL or a JSON file."),
    index_dir: Path = typer.Option(..., "--index", help="Index folder (created if missing)."),
    backbone: Optional[str] = typer.Option(None, help="Feature backbone for a new index (default: the shipped pair "
                                                      "model's, so that it can read the index)."),
    size: Optional[int] = typer.Option(None, help=f"Long side in px for a new index's features, a multiple of {STRIDE} "
                                                  f"(default {DEFAULT_SIZE})."),
    scheduler: Optional[str] = scheduler_option(),
    workers: Optional[int] = workers_option(),
    keypoints: Optional[bool] = typer.Option(None, "--keypoints/--no-keypoints", help="Store each image's keypoints "
                                             "(XFeat, 1024 an image, about 140 kB), which search's verdicts and boxes "
                                             "use; an index without them gets them on its next update (default: where "
                                             "the keypoint wheels are installed)."),
    details: Optional[bool] = typer.Option(None, "--details/--no-details", help="Also store a finer layer of "
                                           "keypoints (XFeat at 1600 px, 4096 an image, about 560 kB) so that `search "
                                           "--box` finds small details and their boxes (default: keep what the index "
                                           "has)."),
    parallel: int = typer.Option(4, "--parallel", help="IIIF: requests to the image server at once (each retried "
                                                      "with backoff on a server error)."),
):
    """Index a folder, or update its index: new, changed and deleted files are found; resumes after a kill.

    Given a IIIF manifest (or a collection of manifests), each canvas's image is fetched from its Image API
    service at the size the index needs into INDEX/iiif-cache/, and results name the manifest, canvas and label
    and give boxes in canvas coordinates. Running it again re-reads the manifest and fetches only what changed
    (docs/iiif.md).
    """
    # A manifest: an http(s) URL, or a file that is not an image (an image file is refused as not a folder).
    manifest = source.lower().startswith(("http://", "https://")) or (Path(source).is_file() and
                                                                     not is_image_name(source))
    if manifest:
        from ..iiif.manifests import check_source

        check_source(source)
    check_arguments(folders=[] if manifest else [Path(source)], size=size, output_folders=[(index_dir, "--index")],
                    counts=[(parallel, "--parallel")])
    check_engine_options(scheduler, workers)
    if keypoints or details:
        from ..keypoints import check_installed
        from ..shipped import DETAIL_KEYPOINTS, INDEX_KEYPOINTS

        check_installed(INDEX_KEYPOINTS[0])
        check_installed(DETAIL_KEYPOINTS[0])
    with cluster_engine(scheduler, workers) as engine:
        if manifest:
            from ..iiif.http import Fetcher
            from ..iiif.index import index_manifest

            built, summary, fetched = index_manifest(source, index_dir, backbone=backbone, size=size, engine=engine,
                                                     keypoints=keypoints, details=details,
                                                     fetcher=Fetcher(parallel=parallel))
            typer.echo(fetched.line())
        else:
            from ..collection.update import update_index

            built, summary = update_index(Path(source), index_dir, backbone=backbone, size=size, engine=engine,
                                          keypoints=keypoints, details=details)
    typer.echo(summary.line())
    typer.echo(f"{index_dir}: {len(built)} images ({built.backbone}, {built.size} px)")


def search(
    query: Path = typer.Argument(..., help="Query image."),
    index_dir: Path = typer.Option(..., "--index", help="Index folder from `segswap index`."),
    box: Optional[str] = typer.Option(None, help="Search for this detail of the query: x0,y0,x1,y1 in its pixels."),
    top: int = typer.Option(10, help="Results to return."),
    shortlist: int = typer.Option(100, help="Candidates shortlisted by descriptor, then re-ranked by the pair model."),
    rerank: str = typer.Option("model", help="Re-rank the shortlist by the pair model's score (model), or by ArtMiner's "
                                             "training-free affine verification of backbone features (ransac)."),
    threshold: Optional[float] = typer.Option(
        None, help="Say 'match' from this matched fraction of the query (0–1; with --rerank ransac, from this "
                   "ArtMiner score). Default: the threshold calibrated for the weights, if any."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results: a list of {path, score, "
                                                                  "matched_fraction, match, box}, best first."),
    report: Optional[Path] = typer.Option(None, help=REPORT_HELP),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help=ANNOTATIONS_HELP),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    keypoints: Optional[bool] = typer.Option(None, "--keypoints/--no-keypoints", help="Check the head of the ranking "
                                             "by the keypoints the index stores: their homography inliers join the "
                                             "verdict (either evidence enough) and give the box where they decide "
                                             "(default: where the index has them)."),
    shipped: bool = typer.Option(False, "--shipped", help=SHIPPED_HELP),
):
    """Where else does this image, or this detail of it, appear in the collection?

    Each result shows its score (the pair model's Eq. 3: about how many of the query's 16-px cells find
    a confident match in the image; it grows with the query's size, so compare scores within one
    search), the matched fraction (the score over the query's cells), and a verdict: 'match' when the
    matched fraction reaches the threshold calibrated for the weights on held-out synthetic pairs (95 %
    precision there), 'no match' below it. Where the index stores keypoints, the first results are also
    matched by them: a result with as many homography inliers as calibrated is a 'match' too, ranked by
    the stronger of the two pieces of evidence, and boxed by its inliers. With --rerank ransac the score
    is ArtMiner's verification score and there is no verdict unless --threshold is given.
    """
    check_arguments(files=[query], folders=[index_dir], weights=weights, counts=[(top, "--top"), (shortlist, "--shortlist")],
                    output_files=[(json_out, "--json"), (report, "--report"), (annotations, "--annotations")])
    if annotations:
        check_annotations(index_dir)
    query_box = parse_box(box) if box else None
    check_finite(threshold, "--threshold")
    from ..collection.methods import check_reranker

    check_reranker(rerank)
    from ..collection.index import CollectionIndex
    from ..collection.html_report import write_search_report
    from ..collection.search import search as run_search

    if rerank == "ransac" and (model or weights):
        raise SegswapError("--model and --weights choose the pair model that re-ranks; --rerank ransac uses none")
    with CollectionIndex(index_dir) as collection:
        # ArtMiner's verification needs only the backbone: the training-free model carries it, no weights.
        name = "correlation" if rerank == "ransac" else model
        matcher = index_matcher(name, weights, collection.backbone, collection.size, collection, shipped)
        result = run_search(collection, query, matcher, box=query_box, top=top, shortlist=shortlist,
                            rerank=rerank, threshold=threshold, keypoints=keypoints, show_progress=True)
        if result.threshold is None:
            typer.echo("no calibrated match threshold for these weights: the results are a ranking "
                       "(--threshold gives verdicts)", err=True)
        for rank, hit in enumerate(result.hits, 1):
            where = f"{','.join(map(str, hit.box))} ({hit.box_from})" if hit.box else "-"
            matched = "" if hit.matched is None else f"{100 * hit.matched:6.1f} %"
            inliers = "" if hit.inliers is None else f"  {hit.inliers} keypoint inliers"
            verdict = {True: "match", False: "no match", None: "-"}[hit.match]
            why = f" (by {' + '.join(hit.decided_by)})" if hit.match and hit.decided_by else ""
            typer.echo(f"{rank:>3}. {hit.score:8.3f} {matched}  {verdict:<8}  {hit.image.path}  box {where}{inliers}{why}")
            if hit.image.canvas is not None:
                typer.echo(f"       {hit.image.canvas.describe(hit.box, hit.image.size)}")
        if json_out:
            write_json(json_out, [hit.as_json() for hit in result.hits])
        if annotations:
            from ..iiif.annotations import search_page, write_page

            asked = collection.find(query)
            page, left_out = search_page(result, annotations, asked.canvas if asked else None, asked.size if asked else None)
            write_page(annotations, page)
            typer.echo(f"annotations: {annotations} ({len(page['items'])} annotations"
                       + (f"; {left_out} results are no IIIF canvas, left out" if left_out else "") + ")")
        if report:
            with stage("writing the report"):
                write_search_report(report, result, matcher)
            typer.echo(f"report: {report}")


def discover(
    index_dir: Path = typer.Option(..., "--index", help="Index folder from `segswap index`."),
    design: str = typer.Option(DISCOVERY_DESIGNS[0], help="regions: verified edges (pair score or keypoints, "
                               "calibrated as search's) between each image's nearest images, their regions grouped "
                               "into patterns, near-duplicates folded (the number of patterns follows from the data); "
                               "spectral: SegSwap's correspondence graph, its eigenvectors and k-means."),
    top_k: Optional[int] = typer.Option(None, help="Neighbours per image (by descriptor) the pair model is run against "
                                        "(default: 5)."),
    min_evidence: float = typer.Option(1.0, "--min-evidence", help="regions: the fused score an edge needs (1: the "
                                       "pair score or the keypoints at their calibrated precision; higher asks more)."),
    clusters: Optional[int] = typer.Option(None, help="spectral: k-means clusters (default: one per five images, 3 to 500)."),
    flip: bool = typer.Option(False, help=FLIP_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the patterns found as JSON."),
    report: Optional[Path] = typer.Option(None, help="Write an HTML report (self-contained), one row per pattern."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help=ANNOTATIONS_HELP),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    scheduler: Optional[str] = scheduler_option(),
    workers: Optional[int] = workers_option(),
    shipped: bool = typer.Option(False, "--shipped", help=SHIPPED_HELP),
):
    """What repeats across the collection? Patterns found in several images, and where."""
    check_arguments(folders=[index_dir], weights=weights, counts=[(top_k, "--top-k"), (clusters, "--clusters")],
                    output_files=[(json_out, "--json"), (report, "--report"), (annotations, "--annotations")])
    if annotations:
        check_annotations(index_dir)
    check_engine_options(scheduler, workers)
    check_design(design, clusters, min_evidence)
    from ..collection.discover import discovery_json, run_discovery
    from ..collection.index import CollectionIndex
    from ..collection.html_report import write_discovery_report

    with CollectionIndex(index_dir) as collection, cluster_engine(scheduler, workers) as engine:
        matcher = index_matcher(model, weights, collection.backbone, collection.size, collection, shipped)
        found = run_discovery(collection, matcher, design=design, top_k=top_k, clusters=clusters,
                              min_evidence=min_evidence, flip=flip, engine=engine)
        result = discovery_json(found)
        typer.echo(result["summary"])
        for number, pattern in enumerate(result["patterns"], 1):
            if pattern.get("kind") == "near-duplicates":  # one group: its image and the ones folded onto it
                group = [pattern["images"][0]["path"], *pattern["images"][0]["near_duplicates"]]
                typer.echo(f"  near-duplicates {number}: {len(group)} near-identical images (strength "
                           f"{pattern['strength']:.1f}): {', '.join(Path(p).name for p in group)}")
                continue
            names = ", ".join(Path(m["path"]).name + (f" (+{len(m['near_duplicates'])} near-identical)"
                                                      if m.get("near_duplicates") else "") for m in pattern["images"][:6])
            more = f" and {len(pattern['images']) - 6} more" if len(pattern["images"]) > 6 else ""
            typer.echo(f"  pattern {number}: {len(pattern['images'])} images (strength {pattern['strength']:.1f}): "
                       f"{names}{more}")
            for member in pattern["images"][:6]:
                canvas = member.get("canvas")
                if canvas:
                    typer.echo(f"    {Path(member['path']).name}: canvas {canvas['label'] or '(no label)'!r} of "
                               f"{canvas['manifest_label'] or canvas['manifest']!r} {canvas['target']}")
        if json_out:
            write_json(json_out, result)
        if annotations:
            from ..iiif.annotations import discovery_page, write_page

            page, left_out = discovery_page(found, annotations)
            write_page(annotations, page)
            typer.echo(f"annotations: {annotations} ({len(page['items'])} annotations"
                       + (f"; {left_out} regions are no IIIF canvas, left out" if left_out else "") + ")")
        if report:
            with stage("writing the report"):
                write_discovery_report(report, found, matcher)
            typer.echo(f"report: {report}")


def cosegment(
    directory: Path = typer.Argument(..., help="Folder of images, or a co-segmentation layout folder (images/<group>/...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the masks: OUT/<stem>.png (0/255), OUT/<group>/... for groups."),
    top_k: int = typer.Option(5, help="Partners per image whose correspondences enter the graph (the paper's 5)."),
    flip: bool = typer.Option(False, help=FLIP_HELP),
    report: Optional[Path] = typer.Option(None, help=REPORT_HELP),
    size: Optional[int] = typer.Option(None, help=SIZE_HELP),
    backbone: Optional[str] = typer.Option(None, help=BACKBONE_HELP),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    weights: Optional[Path] = typer.Option(None, help=WEIGHTS_HELP),
    method: str = typer.Option(DEFAULT_METHOD, help="How the masks are made: " + "; ".join(
        f"{name}: {spec.description}" for name, spec in COSEG_METHODS.items()) + ". Measured on the Benchmarks page (docs/benchmarks.md)."),
    index_dir: Optional[Path] = typer.Option(None, "--index", help="An index (`segswap index`) of this folder or "
                                             "one holding it: the model runs at the index's backbone and size, the "
                                             "features of the images it holds up to date are read from it, and their "
                                             "objectness priors are kept in it for next time."),
    scheduler: Optional[str] = scheduler_option(),
    workers: Optional[int] = workers_option(),
    scratch: Optional[Path] = scratch_option(),
    shipped: bool = typer.Option(False, "--shipped", help=SHIPPED_HELP),
):
    """Cut out the object common to the images of a folder, as masks. Each sub-folder is a group
    co-segmented on its own (in a co-segmentation layout, images/<group>/), and so are the images
    directly in the folder."""
    check_arguments(folders=[directory, *([index_dir] if index_dir else [])], weights=weights, size=size,
                    output_folders=[(out, "--out")], output_files=[(report, "--report")], counts=[(top_k, "--top-k")])
    from ..collection.methods import check_method

    check_method(method)
    check_engine_options(scheduler, workers, scratch, needs_scratch=True)
    from ..collection.cosegment import INDEX_AND_CLUSTER, cosegment_folder

    if index_dir is not None and (scheduler or workers):
        raise SegswapError(INDEX_AND_CLUSTER)
    from ..collection.html_report import fallback_note, write_cosegment_report

    matcher = None
    if index_dir is not None:
        # As `search` does: the model runs at the index's backbone and size, so its features serve as they are.
        from ..collection.index import CollectionIndex

        with CollectionIndex(index_dir) as collection:
            backbone, size = backbone or collection.backbone, size or collection.size
            matcher = index_matcher(model, weights, backbone, size, collection, shipped)
    with cluster_engine(scheduler, workers, scratch) as engine:
        matcher = matcher or load_matcher(model, weights, backbone=backbone, size=size)
        summary = cosegment_folder(directory, out, matcher, top_k=top_k, flip=flip, method=method, index=index_dir,
                                   engine=engine)
    fallback = [flag for group in summary.groups.values() for flag in group["fallback"]]
    typer.echo(f"wrote {summary.images} masks to {out} ({len(summary.groups)} group(s): "
               f"{', '.join(summary.groups)}); {len(summary.skipped)} unreadable files skipped"
               + (f"; {fallback_note(fallback)}" if any(fallback) else ""))
    if report:
        with stage("writing the report"):
            write_cosegment_report(report, summary, matcher)
        typer.echo(f"report: {report}")


COMMANDS = {"index": index, "learn": learn, "search": search, "discover": discover, "cosegment": cosegment}
