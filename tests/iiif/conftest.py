"""A real, local IIIF setup: static Image API level-0 services and Presentation manifests written into a
temporary folder, served over loopback by an HTTP server thread the test starts, which can fail requests.

Each image is a "canvas" twice the size of the largest file its service holds (its ``info.json`` lists
``sizes``; the full-size image is not there), so a client that asks for anything but a listed size gets a
404, and boxes in canvas coordinates are twice those in the fetched file's pixels.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

#: The canvas is this many times the largest size the service holds.
CANVAS_SCALE = 2


@dataclass
class Faults:
    """Failures the server injects: ``times[path] = (status, n)`` fails the next n requests to path;
    ``always[path] = status`` fails them all; ``delay`` slows every image. ``log`` lists every path asked for."""

    times: dict = field(default_factory=dict)
    always: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    delay: float = 0.0  # seconds each image (.jpg) request waits before its answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, path: str) -> int | None:
        with self.lock:
            self.log.append(path)
            if path in self.always:
                return self.always[path]
            if path in self.times:
                status, left = self.times[path]
                if left > 0:
                    self.times[path] = (status, left - 1)
                    return status
        return None

    def asked(self, suffix: str) -> int:
        with self.lock:
            return sum(p.endswith(suffix) for p in self.log)


class Handler(SimpleHTTPRequestHandler):
    faults: Faults

    def do_GET(self):  # noqa: N802 (the standard library's name)
        path = self.path.split("?")[0]
        status = self.faults.check(path)
        if self.faults.delay and path.endswith(".jpg"):
            time.sleep(self.faults.delay)
        if status is not None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def guess_type(self, path):
        return "application/ld+json" if str(path).endswith(".json") else super().guess_type(path)

    def log_message(self, *args):  # quiet
        pass


@dataclass
class IIIFServer:
    root: Path
    base: str
    faults: Faults

    def url(self, relative: str) -> str:
        return f"{self.base}/{relative}"


@pytest.fixture
def iiif_server(tmp_path):
    """A loopback HTTP server over ``tmp_path/site`` (started for the test, stopped after it)."""
    site = tmp_path / "site"
    site.mkdir()
    faults = Faults()
    handler = type("FaultyHandler", (Handler,), {"faults": faults})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield IIIFServer(site, f"http://127.0.0.1:{server.server_address[1]}", faults)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def level0_service(server: IIIFServer, name: str, rgb: np.ndarray, version: int = 3) -> dict:
    """Write ``rgb`` as a static level-0 service ``iiif/<name>``: info.json listing its size and half of it,
    each file at the path that version's canonical form gives (``w,h`` in 3.0, ``w,`` in 2.1). Returns
    the service's description for a manifest, with the canvas size."""
    h, w = rgb.shape[:2]
    service_id = server.url(f"iiif/{name}")
    folder = server.root / "iiif" / name
    sizes = [(w // 2, h // 2), (w, h)]
    for sw, sh in sizes:
        token = f"{sw},{sh}" if version == 3 else f"{sw},"
        target = folder / "full" / token / "0" / "default.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    info = {"width": w * CANVAS_SCALE, "height": h * CANVAS_SCALE,
            "sizes": [{"width": sw, "height": sh} for sw, sh in sizes]}
    if version == 3:
        info = {"@context": "http://iiif.io/api/image/3/context.json", "id": service_id, "type": "ImageService3",
                "protocol": "http://iiif.io/api/image", "profile": "level0", **info}
    else:
        info = {"@context": "http://iiif.io/api/image/2/context.json", "@id": service_id,
                "protocol": "http://iiif.io/api/image", "profile": ["http://iiif.io/api/image/2/level0.json"], **info}
    (folder / "info.json").write_text(json.dumps(info))
    return {"id": service_id, "width": w * CANVAS_SCALE, "height": h * CANVAS_SCALE, "version": version}


def manifest_v3(server: IIIFServer, name: str, services: list[dict], label: str = "A manuscript") -> str:
    """Write a Presentation 3 manifest ``<name>.json`` with one canvas per service; returns its URL."""
    manifest_id = server.url(f"{name}.json")
    items = []
    for k, service in enumerate(services):
        canvas_id = server.url(f"{name}/canvas/{k + 1}")
        items.append({
            "id": canvas_id, "type": "Canvas", "label": {"none": [f"f. {k + 1}r"]},
            "width": service["width"], "height": service["height"],
            "items": [{"id": f"{canvas_id}/page", "type": "AnnotationPage", "items": [{
                "id": f"{canvas_id}/page/image", "type": "Annotation", "motivation": "painting", "target": canvas_id,
                "body": {"id": f"{service['id']}/full/max/0/default.jpg", "type": "Image", "format": "image/jpeg",
                         "width": service["width"], "height": service["height"],
                         "service": [{"id": service["id"], "type": "ImageService3", "profile": "level0"}]}}]}]})
    manifest = {"@context": "http://iiif.io/api/presentation/3/context.json", "id": manifest_id, "type": "Manifest",
                "label": {"en": [label]}, "items": items}
    (server.root / f"{name}.json").write_text(json.dumps(manifest, indent=1))
    return manifest_id


def manifest_v2(server: IIIFServer, name: str, services: list[dict], label: str = "An album") -> str:
    """Write a Presentation 2.1 manifest ``<name>.json``; returns its URL."""
    manifest_id = server.url(f"{name}.json")
    canvases = []
    for k, service in enumerate(services):
        canvas_id = server.url(f"{name}/canvas/{k + 1}")
        canvases.append({
            "@id": canvas_id, "@type": "sc:Canvas", "label": f"plate {k + 1}",
            "width": service["width"], "height": service["height"],
            "images": [{"@type": "oa:Annotation", "motivation": "sc:painting", "on": canvas_id,
                        "resource": {"@id": f"{service['id']}/full/full/0/default.jpg", "@type": "dctypes:Image",
                                     "format": "image/jpeg", "width": service["width"], "height": service["height"],
                                     "service": {"@context": "http://iiif.io/api/image/2/context.json",
                                                 "@id": service["id"],
                                                 "profile": "http://iiif.io/api/image/2/level0.json"}}}]})
    manifest = {"@context": "http://iiif.io/api/presentation/2/context.json", "@id": manifest_id, "@type": "sc:Manifest",
                "label": label, "sequences": [{"@type": "sc:Sequence", "canvases": canvases}]}
    (server.root / f"{name}.json").write_text(json.dumps(manifest, indent=1))
    return manifest_id


def collection_v3(server: IIIFServer, name: str, manifests: list[str]) -> str:
    collection_id = server.url(f"{name}.json")
    (server.root / f"{name}.json").write_text(json.dumps({
        "@context": "http://iiif.io/api/presentation/3/context.json", "id": collection_id, "type": "Collection",
        "label": {"en": ["A library's collection"]},
        "items": [{"id": m, "type": "Manifest", "label": {"en": [m.rsplit("/", 1)[-1]]}} for m in manifests]}))
    return collection_id


@pytest.fixture(scope="session")
def iiif_kit():
    from types import SimpleNamespace

    return SimpleNamespace(level0_service=level0_service, manifest_v3=manifest_v3, manifest_v2=manifest_v2,
                           collection_v3=collection_v3, CANVAS_SCALE=CANVAS_SCALE)
