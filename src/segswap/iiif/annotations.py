"""Results as W3C Web Annotations, for IIIF viewers (Mirador, Universal Viewer): one IIIF Presentation 3
``AnnotationPage`` per `segswap search` or `segswap discover` (``--annotations FILE``).

Every annotation targets ``canvas-id#xywh=x,y,w,h``, the result's box in the canvas's own coordinates
(:meth:`segswap.collection.canvases.CanvasSource.target`), and says what segswap found in its body: a
``commenting`` text (rank, verdict, score) and a ``tagging`` text (``match`` / ``no match``, or the
pattern's number). A search's query, when it is itself a canvas of the index, gets one too. A discovered
pattern gets one ``commenting`` annotation per region and one ``linking`` annotation whose targets are all
its regions.

The page is built with iiif-prezi3's models (generated from the IIIF Presentation 3 JSON Schema), so a page
that would not validate is not written. Results that are not canvases (images of a folder's index) have
no place on a canvas and are left out (the count is returned).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SegswapError
from ..io.files import write_bytes_atomic

#: What installs the writer: iiif-prezi3 pins Pillow<=12.0.0, so it goes in without its requirements.
INSTALL = "pip install --no-deps iiif-prezi3==3.1.1"


def check_writer() -> None:
    """One line if iiif-prezi3, which writes the pages, is not installed."""
    from importlib.util import find_spec

    if find_spec("iiif_prezi3") is None:
        raise SegswapError(f"--annotations needs iiif-prezi3: {INSTALL}")


def search_page(result, path: Path, query_canvas=None, query_size: tuple[int, int] | None = None) -> tuple[dict, int]:
    """The annotation page of a :class:`~segswap.collection.search.SearchResult`; ``query_canvas``: the
    query's :class:`CanvasSource` (with its image ``query_size``) when the query is a canvas of the index.
    Returns the page (JSON) and how many hits were left out (no canvas)."""
    from iiif_prezi3 import AnnotationPage

    base = _page_id(path)
    items, left_out = [], 0
    query = f"{Path(result.query).name}" + (f" (box {','.join(map(str, result.query_box))})" if result.query_box else "")
    if query_canvas is not None:
        where = query_canvas.target(result.query_box, query_size)
        items.append(_annotation(f"{base}#query", [where], "commenting",
                                 f"segswap search: the query ({query})", "query"))
        query = f"{query}, {where}"
    for rank, hit in enumerate(result.hits, 1):
        canvas = hit.image.canvas
        if canvas is None:
            left_out += 1
            continue
        verdict = {True: "match", False: "no match", None: "ranked"}[hit.match]
        details = [f"score {hit.score:.3f}"]
        if hit.matched is not None:
            details.insert(0, f"{100 * hit.matched:.1f} % of the query matched")
        if hit.inliers is not None:
            details.append(f"{hit.inliers} keypoint inliers")
        if hit.match and hit.decided_by:
            details.append(f"by {' + '.join(hit.decided_by)}")
        text = (f"segswap search, result {rank} of {len(result.hits)}: {verdict} ({'; '.join(details)}); "
                f"query {query}; {canvas.label or canvas.canvas} of {canvas.manifest_label or canvas.manifest}")
        items.append(_annotation(f"{base}#result-{rank}", [canvas.target(hit.box, hit.image.size)], "commenting",
                                 text, verdict))
    page = AnnotationPage(id=base, label={"en": [f"segswap search: {query}"]}, items=items)
    return _as_json(page), left_out


def discovery_page(found, path: Path) -> tuple[dict, int]:
    """The annotation page of a discovery (:class:`~segswap.collection.regions.RegionDiscovery`'s patterns or a
    :class:`~segswap.collection.discover.Discovery`'s clusters); returns the page and how many pattern
    regions were left out (not canvases)."""
    from iiif_prezi3 import AnnotationPage

    base = _page_id(path)
    items, left_out = [], 0
    patterns = found.patterns if hasattr(found, "patterns") else found.clusters
    for number, cluster in enumerate(patterns, 1):
        regions = [m for m in cluster.images if m.image.canvas is not None]
        left_out += len(cluster.images) - len(regions)
        targets = [m.image.canvas.target(m.box, m.image.size) for m in regions]
        summary = (f"segswap discover, pattern {number} of {len(patterns)}: {len(cluster.images)} images, "
                   f"strength {cluster.strength:.1f}")
        for k, (member, target) in enumerate(zip(regions, targets), 1):
            canvas = member.image.canvas
            items.append(_annotation(f"{base}#pattern-{number}-region-{k}", [target], "commenting",
                                     f"{summary}; region {k} of {len(regions)} ({canvas.label or canvas.canvas} of "
                                     f"{canvas.manifest_label or canvas.manifest})", f"pattern {number}"))
        if len(targets) >= 2:
            items.append(_annotation(f"{base}#pattern-{number}", targets, "linking",
                                     f"{summary}: the same pattern in these {len(targets)} regions", f"pattern {number}"))
    page = AnnotationPage(id=base, label={"en": [f"segswap discover: {len(patterns)} patterns"]}, items=items)
    return _as_json(page), left_out


def write_page(path: Path, page: dict) -> None:
    import json

    write_bytes_atomic(path, (json.dumps(page, indent=1, ensure_ascii=False) + "\n").encode())


def _annotation(annotation_id: str, targets: list[str], motivation: str, text: str, tag: str):
    from iiif_prezi3 import Annotation, TextualBody

    body = [TextualBody(value=text, format="text/plain", language="en", purpose="commenting"),
            TextualBody(value=tag, format="text/plain", language="en", purpose="tagging")]
    return Annotation(id=annotation_id, motivation=motivation, body=body,
                      target=targets[0] if len(targets) == 1 else targets)


def _page_id(path: Path) -> str:
    """The page's id: the file's own URI (a viewer loading it from elsewhere keys it by this string)."""
    return Path(path).resolve().as_uri()


def _as_json(page) -> dict:
    import json

    return json.loads(page.jsonld())
