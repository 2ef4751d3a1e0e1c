"""Read a IIIF Presentation 2.1 or 3.0 manifest, or a collection of them, into the canvases to fetch.

iiisight parses the documents (a v2 document is upgraded to v3 first, so one walk serves both) and is
tolerant by design; segswap is not, where a guess would put wrong boxes on a scholar's canvas. A document
that is not JSON, not a manifest or collection of Presentation 2 or 3, without an id, or with a canvas
lacking an id or a positive width and height is refused in one line (:class:`MalformedManifest`) before
anything is fetched or written. A canvas that paints no image is skipped with a warning.

Each canvas keeps the first image it paints (a ``Choice``'s default), its Image API service if it has one,
and where on the canvas the image is painted (a ``#xywh=`` target; the whole canvas otherwise).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..errors import SegswapError
from .http import Fetcher, Missing

#: Collections inside collections are followed this deep.
MAX_DEPTH = 4
_XYWH = re.compile(r"#xywh=(?:pixel:)?(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$")


class MalformedManifest(SegswapError):
    """A document that is not a IIIF manifest or collection segswap can read, said in one line."""


@dataclass(frozen=True)
class CanvasImage:
    """One canvas to fetch, and all that results need of it."""

    manifest: str
    manifest_label: str
    id: str
    label: str
    position: int
    size: tuple[int, int]  # (w, h), canvas coordinates
    region: tuple[int, int, int, int]  # x, y, w, h: where the image is painted
    image: str  # the painted image resource's id (a URL)
    service: object | None = None  # iiisight.ImageService (not yet loaded), or None: fetch ``image`` itself

    @property
    def source(self) -> str:
        """What is fetched: the Image API service, else the image resource."""
        return self.service.id if self.service is not None else self.image

    @property
    def key(self) -> str:
        """The cache file's name (without suffix): the canvas and what it paints, hashed; a canvas whose
        image changes gets a new file."""
        return hashlib.sha1(f"{self.id}\n{self.source}".encode()).hexdigest()[:20]


@dataclass
class ManifestCanvases:
    id: str
    label: str
    canvases: list[CanvasImage] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return manifest_folder(self.id)


@dataclass
class Reading:
    """What a source gave: its manifests, and those of its collection that could not be fetched (their
    cached canvases are kept, not taken for removed)."""

    manifests: list[ManifestCanvases] = field(default_factory=list)
    unreachable: list[tuple[str, str]] = field(default_factory=list)  # (manifest id, why)
    skipped: list[str] = field(default_factory=list)  # canvases painting no image, said once each


def manifest_folder(manifest_id: str) -> str:
    """The cache sub-folder of a manifest: a readable tail of its id and a hash of all of it (stable while
    the id is)."""
    parts = [p for p in urlparse(manifest_id).path.split("/") if p and p.lower() not in
             ("manifest", "manifest.json", "iiif", "presentation", "api", "2", "3", "v2", "v3")]
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", parts[-1] if parts else "manifest").strip("-.")[:40] or "manifest"
    tail = re.sub(r"\.json$", "", tail)
    return f"{tail}-{hashlib.sha1(manifest_id.encode()).hexdigest()[:8]}"


def is_remote(source: str) -> bool:
    return re.match(r"^https?://", source, re.IGNORECASE) is not None


def check_source(source: str) -> None:
    """A manifest given on the command line is an http(s) URL or a file; one line otherwise."""
    if is_remote(source):
        return
    path = Path(source)
    if not path.exists():
        raise SegswapError(f"{source}: no such folder, manifest file or http(s) URL")
    if not path.is_file():
        raise SegswapError(f"{source}: not a file")


def read_source(source: str, fetcher: Fetcher) -> Reading:
    """The canvases of the manifest or collection at ``source`` (an http(s) URL or a JSON file)."""
    reading = Reading()
    document = _load(source, fetcher)
    _read(document, source, fetcher, reading, depth=0, seen=set())
    return reading


def _load(source: str, fetcher: Fetcher):
    if is_remote(source):
        return fetcher.get_json(source, "manifest")
    try:
        text = Path(source).read_bytes()
    except OSError as err:
        raise SegswapError(f"{source}: {err.strerror or err}") from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise MalformedManifest(f"{source}: not a IIIF manifest: not JSON ({err})") from None


def _read(document, source: str, fetcher: Fetcher, reading: Reading, depth: int, seen: set[str]) -> None:
    import iiisight

    kind = _declared_kind(document, source)
    parsed = iiisight.normalize(document)
    if not parsed.id:
        raise MalformedManifest(f"{source}: the {kind} has no id")
    if parsed.id in seen:  # a collection listing itself, or one manifest twice
        return
    seen.add(parsed.id)
    if kind == "manifest":
        reading.manifests.append(_canvases(parsed, source, reading))
        return
    if depth >= MAX_DEPTH:
        raise MalformedManifest(f"{source}: collections nested more than {MAX_DEPTH} deep")
    for item in parsed.items:
        kind = getattr(item, "type", "")
        if kind not in ("Manifest", "Collection") or not item.id or item.id in seen:
            continue
        if kind == "Manifest" and getattr(item, "canvases", ()):  # embedded whole (rare): read as it is
            seen.add(item.id)
            reading.manifests.append(_canvases(item, item.id, reading))
            continue
        if not is_remote(item.id):
            raise MalformedManifest(f"{source}: lists {item.id!r}, which is not an http(s) URL")
        try:
            document = _load(item.id, fetcher)
        except Missing as err:
            print(f"warning: {err}; its canvases are kept as they were", file=sys.stderr, flush=True)
            reading.unreachable.append((item.id, str(err)))
            continue
        _read(document, item.id, fetcher, reading, depth + 1, seen)


def _declared_kind(document, source: str) -> str:
    """'manifest' or 'collection', as the document says of itself (type and @context), or a one-line refusal."""
    if not isinstance(document, dict):
        raise MalformedManifest(f"{source}: not a IIIF manifest: a JSON {type(document).__name__}, not an object")
    declared = document.get("type", document.get("@type"))
    context = document.get("@context")
    contexts = " ".join(c for c in (context if isinstance(context, list) else [context]) if isinstance(c, str))
    if "presentation/2" not in contexts and "presentation/3" not in contexts:
        raise MalformedManifest(f"{source}: not a IIIF Presentation 2 or 3 document (its @context is {context!r})")
    kinds = {"Manifest": "manifest", "sc:Manifest": "manifest", "Collection": "collection", "sc:Collection": "collection"}
    if declared not in kinds:
        raise MalformedManifest(f"{source}: not a IIIF manifest or collection (its type is {declared!r})")
    return kinds[declared]


def _canvases(manifest, source: str, reading: Reading) -> ManifestCanvases:
    label = _text(manifest.label)
    found = ManifestCanvases(manifest.id, label)
    if not manifest.canvases:
        raise MalformedManifest(f"{source}: the manifest lists no canvas")
    seen = set()
    for position, canvas in enumerate(manifest.canvases):
        where = f"{source}: canvas {position + 1}"
        if not canvas.id:
            raise MalformedManifest(f"{where} has no id")
        if not (isinstance(canvas.width, int) and isinstance(canvas.height, int) and canvas.width > 0
                and canvas.height > 0):
            raise MalformedManifest(f"{where} ({canvas.id}) has no positive width and height")
        image, region = _painted_image(canvas)
        if image is None:
            reading.skipped.append(f"{canvas.id} ({_text(canvas.label) or 'no label'}) of {manifest.id}: it paints no image")
            continue
        entry = CanvasImage(manifest.id, label, canvas.id, _text(canvas.label), position, (canvas.width, canvas.height),
                            region or (0, 0, canvas.width, canvas.height), image.id,
                            image.service[0] if image.service else None)
        if entry.key in seen:
            continue
        seen.add(entry.key)
        found.canvases.append(entry)
    return found


def _painted_image(canvas):
    """The first image the canvas paints (with an id) and the region it is painted on, if a part."""
    for page in canvas.items:
        for annotation in page.items:
            if "painting" not in annotation.motivation:
                continue
            bodies = annotation.body if isinstance(annotation.body, tuple) else (annotation.body,)
            for body in bodies:
                if getattr(body, "type", None) == "Choice":
                    body = body.items[0] if body.items else None
                if body is not None and getattr(body, "type", None) == "Image" and (body.id or body.service):
                    return body, _region(annotation.target, canvas)
    return None, None


def _region(target, canvas) -> tuple[int, int, int, int] | None:
    """Where on ``canvas`` a painting annotation's ``target`` puts its image (``#xywh=``), within the canvas."""
    text = target if isinstance(target, str) else None
    if text is None and target is not None and getattr(target, "selector", None) is not None:
        text = "#" + (target.selector.value or "")
    match = _XYWH.search(text or "")
    if match is None:
        return None
    x, y, w, h = (round(float(v)) for v in match.groups())
    x, y = min(max(0, x), canvas.width - 1), min(max(0, y), canvas.height - 1)
    w, h = max(1, min(w, canvas.width - x)), max(1, min(h, canvas.height - y))
    return x, y, w, h


def _text(label) -> str:
    """A language map as one display string ('' for none)."""
    return "" if label is None else str(label).strip()
