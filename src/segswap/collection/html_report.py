"""HTML reports of search, discovery and co-segmentation results (see :mod:`segswap.viz.html`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..io import load_image
from ..viz.html import Row, Tile, write_report
from .cosegment import FolderSummary
from .search import SearchResult

#: Discovery reports show at most this many patterns, and this many images of each.
MAX_PATTERNS = 50
MAX_IMAGES_PER_PATTERN = 12


def model_line(matcher) -> str:
    state = "" if matcher.trained else " (untrained: results are meaningless)"
    return f"model {matcher.name}{state} on {matcher.backbone.name}"


def write_search_report(path: Path, result: SearchResult, matcher) -> None:
    query = Tile(load_image(result.query), f"query: {result.query.name}", box=result.query_box)
    tiles = []
    for rank, hit in enumerate(result.hits, 1):
        verdict = {True: ", match", False: ", no match", None: ""}[hit.match]
        tiles.append(_tile(hit.image.path, f"#{rank} {hit.image.path.name} — score {hit.score:.2f}{verdict}", hit.mask, hit.box))
    if result.rerank == "ransac":
        summary = [f"{result.shortlisted} images shortlisted by descriptor, re-ranked by ArtMiner's verification "
                   f"(training-free) on {matcher.backbone.name}"]
    else:
        summary = [f"{result.shortlisted} images shortlisted by descriptor, re-ranked by the pair model's score (Eq. 3)",
                   model_line(matcher)]
    if result.threshold is None:
        summary.append("no match threshold for these weights: the results are a ranking")
    else:
        statistic = "ArtMiner score" if result.rerank == "ransac" else "matched fraction of the query"
        origin = "calibrated on held-out synthetic pairs" if result.threshold_source == "calibrated" else "given"
        summary.append(f"'match' from a {statistic} of {result.threshold:.4g} ({origin})")
    write_report(path, "segswap search", [Row("Query", [query]), Row("Best matches (matched region tinted, its box in green)", tiles)], summary)


def write_discovery_report(path: Path, found, matcher) -> None:  # found: Discovery or RegionDiscovery
    """One row per pattern of a :class:`Discovery` (spectral) or a
    :class:`~segswap.collection.regions.RegionDiscovery` (repeats first, near-duplicate groups folded)."""
    from .regions import RegionDiscovery

    if isinstance(found, RegionDiscovery):
        _write_region_report(path, found, matcher)
        return
    rows = []
    for number, cluster in enumerate(found.clusters[:MAX_PATTERNS], 1):
        shown = cluster.images[:MAX_IMAGES_PER_PATTERN]
        tiles = [_tile(m.image.path, m.image.path.name, m.weight / max(float(m.weight.max()), 1e-12), m.box) for m in shown]
        notes = [f"and {len(cluster.images) - len(shown)} more images"] if len(cluster.images) > len(shown) else []
        rows.append(Row(f"Pattern {number}: {len(cluster.images)} images, {cluster.nodes} correspondences, "
                        f"strength {cluster.strength:.1f}", tiles, notes))
    summary = [f"{found.images} images, {found.pairs} pairs run, graph of {found.nodes} correspondences and "
               f"{found.edges} edges; {len(found.clusters)} repeated patterns"
               + (f" (the strongest {MAX_PATTERNS} shown)" if len(found.clusters) > MAX_PATTERNS else ""),
               model_line(matcher)]
    write_report(path, "segswap discover", rows, summary)


def _write_region_report(path: Path, found, matcher) -> None:
    rows = []
    for number, pattern in enumerate(found.patterns[:MAX_PATTERNS], 1):
        shown = pattern.images[:MAX_IMAGES_PER_PATTERN]
        tiles = []
        for member in shown:
            folded = f" (+{len(member.near_duplicates)} near-identical)" if member.near_duplicates else ""
            tiles.append(_tile(member.image.path, member.image.path.name + folded, member.cells.astype(np.float32),
                               member.box))
        notes = [f"and {len(pattern.images) - len(shown)} more images"] if len(pattern.images) > len(shown) else []
        evidence = ", ".join(f"{n} by {name}" for name, n in sorted(pattern.decided_by.items()))
        edges = f"{pattern.edges} verified edge{'s' if pattern.edges != 1 else ''} ({evidence})"
        if pattern.kind == "near-duplicates":  # one group: the first image shown, the others folded beside it
            group = [pattern.images[0].image, *pattern.images[0].near_duplicates]
            title = f"Near-duplicates: {len(group)} near-identical images, shown as one"
            notes.append("folded: " + ", ".join(image.path.name for image in group[1:]))
        else:
            title = f"Pattern {number}: {len(pattern.images)} images"
        rows.append(Row(f"{title}, {edges}, strength {pattern.strength:.1f}", tiles, notes))
    repeats = sum(p.kind == "repeat" for p in found.patterns)
    summary = [f"{found.images} images, {found.pairs} pairs judged, {found.edges} verified; {repeats} repeated patterns, "
               f"{len(found.patterns) - repeats} groups of near-duplicates"
               + (f" (the first {MAX_PATTERNS} shown)" if len(found.patterns) > MAX_PATTERNS else ""),
               model_line(matcher)]
    write_report(path, "segswap discover", rows, summary)


def fallback_note(fallback: list[bool]) -> str:
    """How many masks came from the fallback: a count, since a fallback mask is often a good one (the
    report marks each image), not a failure to list."""
    return (f"{sum(fallback)} of {len(fallback)} masks from the images' own pair masks (no confident "
            "correspondence joined them to the graph)")


def write_cosegment_report(path: Path, summary: FolderSummary, matcher) -> None:
    """One row per group: each image with the mask `segswap cosegment` wrote for it."""
    rows = []
    for name, group in summary.groups.items():
        tiles = []
        for image, mask_path, fallback in zip(group["images"], group["masks"], group["fallback"]):
            mask = load_image(mask_path)[..., 0] / 255.0
            tiles.append(_tile(Path(image), Path(image).name + (" (fallback)" if fallback else ""), mask))
        rows.append(Row(name, tiles, [fallback_note(group["fallback"])] if any(group["fallback"]) else []))
    lines = [f"{summary.images} images in {len(summary.groups)} group(s)", model_line(matcher)]
    lines += [f"skipped: {message}" for message in summary.skipped]
    write_report(path, "segswap cosegment", rows, lines)


def _tile(path: Path, caption: str, mask: np.ndarray | None = None, box=None) -> Tile:
    try:
        image = load_image(path)
    except ImageError:  # changed or removed since it was indexed: show a grey placeholder
        return Tile(np.full((64, 64, 3), 200, np.uint8), caption + " (unreadable now)")
    return Tile(image, caption, mask, box)
