"""The HTTP side of the viewer: a Starlette application (through FastAPI) over :class:`Viewer`.

Pages are static HTML/JS/CSS from ``static/`` that read the JSON API below. Nothing a request carries
is evaluated: ids are integers looked up in the catalogue, boxes are four integers (cut to the image),
and the one route that takes a path (``/files/...``) resolves it inside the indexed folder
(:func:`resolve_inside`). A request's line and headers are capped at :data:`MAX_HEAD_BYTES`, its body
at :data:`MAX_BODY_BYTES`.
"""

from __future__ import annotations

import asyncio
from string import Template
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Body, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from ..collection.methods import DISCOVERY_DESIGNS
from ..errors import ImageError, SegswapError
from .catalog import PAGE_SIZE, resolve_inside
from .pictures import crop, mask_overlay
from .viewer import Viewer

STATIC = Path(__file__).parent / "static"
#: Largest request body accepted (the API's bodies are a few numbers).
MAX_BODY_BYTES = 16 * 1024
#: Largest request line with its headers. uvicorn's h11 limit (server.py) covers only what arrives in
#: pieces: a request read whole passes it, so it is counted here.
MAX_HEAD_BYTES = 16 * 1024
#: Pictures are named by content hash or id: the browser may keep them for a day.
PICTURE_CACHE = "public, max-age=86400"
#: Each page: its title; its content is static/<name>.html, its script static/<name>.js, in page.html.
PAGES = {"collection": "Collection", "image": "Image", "discovery": "Discovery", "cosegment": "Co-segmentation"}


def page_html(name: str) -> str:
    """Page ``name``: the shared frame (``page.html``) around its content, with its title and script."""
    frame = Template((STATIC / "page.html").read_text())
    return frame.substitute(title=PAGES[name], main=(STATIC / f"{name}.html").read_text(), name=name)


def head_bytes(scope) -> int:
    """The size of a request's line and headers as they came on the wire (give or take a few bytes)."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b"")) + 1
    line = len(scope["method"]) + 1 + target + len(" HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", [])) + 2


class BodyLimit:
    """ASGI middleware: 431 for a request whose line and headers exceed ``head_limit`` bytes, 413 for one
    whose declared or streamed body exceeds ``limit`` bytes."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES, head_limit: int = MAX_HEAD_BYTES):
        self.app, self.limit, self.head_limit = app, limit, head_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if head_bytes(scope) > self.head_limit:
            return await JSONResponse({"error": "request headers too large"}, status_code=431)(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await JSONResponse({"error": "request too large"}, status_code=413)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, "request too large")
            return message

        await self.app(scope, limited_receive, send)


def parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    """``"x0,y0,x1,y1"`` (integers; the routes' 64-character limit bounds them) → a tuple, ordered;
    None for none; 400 otherwise. Each route cuts the box to its image."""
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise HTTPException(400, f"box must be four integers x0,y0,x1,y1, got {text!r}")
    x0, y0, x1, y1 = (int(p) for p in parts)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def create_app(viewer: Viewer) -> FastAPI:
    """The application serving ``viewer``; it closes the viewer's lanes when the server stops."""

    @asynccontextmanager
    async def lifespan(app):
        yield
        viewer.close()

    app = FastAPI(title="segswap viewer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    catalog = viewer.catalog

    @app.exception_handler(SegswapError)
    async def user_error(request: Request, err: SegswapError):
        return JSONResponse({"error": str(err)}, status_code=404 if isinstance(err, ImageError) else 400)

    @app.exception_handler(KeyError)
    async def unknown(request: Request, err: KeyError):
        return JSONResponse({"error": f"no such item: {err.args[0] if err.args else ''}"}, status_code=404)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return JSONResponse({"error": err.detail}, status_code=err.status_code)

    # -- pages ---------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/collection")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)  # none: browsers ask for one anyway

    pages = {name: page_html(name) for name in PAGES}  # built once: nothing in them depends on the request

    def page(name: str):
        return HTMLResponse(pages[name], headers={"Cache-Control": "no-cache"})

    app.get("/collection", include_in_schema=False)(lambda: page("collection"))
    app.get("/discovery", include_in_schema=False)(lambda: page("discovery"))
    app.get("/cosegment", include_in_schema=False)(lambda: page("cosegment"))

    @app.get("/image/{image_id}", include_in_schema=False)
    def image_page(image_id: int):
        viewer.image(image_id)
        return page("image")

    # -- pictures ------------------------------------------------------------------------------------
    @app.get("/picture/{kind}/{image_id}.jpg")
    def picture(kind: str, image_id: int):
        if kind not in ("thumb", "view"):
            raise HTTPException(404, "no such picture kind")
        image = viewer.image(image_id)
        path = viewer.pictures.get(kind, image, catalog.absolute(image))
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": PICTURE_CACHE})

    @app.get("/crop/{image_id}.jpg")
    def crop_picture(image_id: int, box: str = Query(..., max_length=64)):
        image = viewer.image(image_id)
        return Response(crop(catalog.absolute(image), parse_box(box)), media_type="image/jpeg",
                        headers={"Cache-Control": PICTURE_CACHE})

    @app.get("/files/{relative:path}")
    def original_file(relative: str):
        """An original file of the collection, by its path relative to the indexed folder."""
        try:
            path = resolve_inside(relative, [catalog.root])
        except SegswapError as err:
            raise HTTPException(404, str(err)) from None
        return FileResponse(path)

    # -- collection ----------------------------------------------------------------------------------
    @app.get("/api/info")
    def info():
        return viewer.info()

    @app.get("/api/images")
    def images(folder: str | None = Query(None, max_length=1024), offset: int = 0, limit: int = PAGE_SIZE):
        total, chosen = catalog.page(folder, offset, limit)
        return {"total": total, "offset": max(0, offset), "images": [image.as_json() for image in chosen]}

    @app.get("/api/images/{image_id}")
    def image_info(image_id: int):
        image = viewer.image(image_id)
        before, after = catalog.neighbours(image_id)
        return {**image.as_json(), "previous": before, "next": after}

    # -- search --------------------------------------------------------------------------------------
    @app.post("/api/search")
    def start_search(image: int = Body(...), box: list[int] | None = Body(None, max_length=4), top: int = Body(10)):
        if box is not None and len(box) != 4:
            raise HTTPException(400, "box must be four integers x0,y0,x1,y1")
        query_box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])) if box else None
        return viewer.submit_search(image, query_box, top).as_json()

    @app.get("/api/pair")
    async def pair(query: int, target: int, box: str | None = Query(None, max_length=64)):
        return await asyncio.wrap_future(viewer.pair(query, parse_box(box), target))

    # -- jobs ----------------------------------------------------------------------------------------
    def find_job(job_id: int):
        job = viewer.search_lane.get(job_id) or viewer.discovery_lane.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job (finished long ago, or from before a restart)")
        return job

    @app.get("/api/jobs/{job_id}")
    def job_state(job_id: int):
        return find_job(job_id).as_json()

    @app.delete("/api/jobs/{job_id}")
    def cancel_job(job_id: int):
        job = find_job(job_id)
        (viewer.search_lane if viewer.search_lane.get(job_id) else viewer.discovery_lane).cancel(job_id)
        return job.as_json()

    # -- discovery -----------------------------------------------------------------------------------
    @app.get("/api/discovery")
    def discovery():
        running = viewer.discovery_lane.active("discover")
        return {"result": viewer.discovery(), "running": running.as_json() if running else None}

    @app.post("/api/discover")
    def start_discovery(design: str = Body(DISCOVERY_DESIGNS[0], max_length=32),
                        top_k: int | None = Body(None, ge=1, le=50), clusters: int | None = Body(None, ge=1, le=1000),
                        min_evidence: float = Body(1.0, gt=0, le=100)):
        """As `segswap discover`: ``design`` (default the command's), ``top_k`` (default the design's),
        ``clusters`` (spectral), ``min_evidence`` (regions). A bad combination is a 400 naming the option."""
        return viewer.submit_discovery(design, top_k, clusters, min_evidence).as_json()

    # -- co-segmentation -----------------------------------------------------------------------------
    def cosegmentation():
        if viewer.cosegmentation is None:
            raise HTTPException(404, "no co-segmentation: start the viewer with --cosegment OUT, the folder of "
                                     "`segswap cosegment DIR --out OUT`")
        return viewer.cosegmentation

    @app.get("/api/cosegment")
    def cosegment_info():
        if viewer.cosegmentation is None:
            return {"folder": None, "groups": []}
        return viewer.cosegmentation.as_json()

    @app.get("/cosegment/overlay/{key}.png")
    def cosegment_overlay(key: int):
        entry = cosegmentation().entry(key)
        if entry is None or entry.mask is None:
            raise HTTPException(404, "no such mask")
        return Response(mask_overlay(entry.mask), media_type="image/png")

    @app.post("/api/cosegment/mark")
    def mark(key: int = Body(...), wrong: bool = Body(...)):
        cosegmentation().mark(key, wrong)
        return {"key": key, "wrong": wrong}

    return app
