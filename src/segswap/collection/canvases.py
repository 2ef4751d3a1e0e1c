"""Where an indexed image came from when it was fetched from a IIIF manifest: its manifest, canvas and label,
and how its pixels map onto the canvas, so that results give boxes in the canvas's own coordinates.

An index made by `segswap index MANIFEST` (:mod:`segswap.iiif`) indexes its cache folder; the ``canvases``
table of ``index.sqlite`` holds one row per cached file (by its path, like ``images``). Images without a
row (a folder's index) have no canvas, and results say nothing of one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The table, created with the index (and by :meth:`IndexWriter.set_canvases` in an index made before it).
SCHEMA = """
CREATE TABLE IF NOT EXISTS canvases (
    path TEXT PRIMARY KEY,          -- the cached image file, relative to the indexed folder, as in images
    manifest TEXT NOT NULL,         -- the manifest's id (a URI)
    manifest_label TEXT NOT NULL,
    canvas TEXT NOT NULL,           -- the canvas's id (a URI)
    label TEXT NOT NULL,            -- the canvas's label ('' when it has none)
    position INTEGER NOT NULL,      -- the canvas's place in its manifest, from 0
    canvas_width INTEGER NOT NULL,  -- the canvas's own size, in its coordinates
    canvas_height INTEGER NOT NULL,
    region_x INTEGER NOT NULL,      -- the part of the canvas the image paints (the whole canvas, mostly)
    region_y INTEGER NOT NULL,
    region_w INTEGER NOT NULL,
    region_h INTEGER NOT NULL,
    image TEXT NOT NULL             -- the URL the file was fetched from
);
"""

COLUMNS = ("manifest", "manifest_label", "canvas", "label", "position", "canvas_width", "canvas_height",
           "region_x", "region_y", "region_w", "region_h", "image")


@dataclass(frozen=True)
class CanvasSource:
    """The IIIF canvas an indexed image shows."""

    manifest: str
    manifest_label: str
    canvas: str
    label: str
    position: int
    canvas_size: tuple[int, int]  # (w, h) in canvas coordinates
    region: tuple[int, int, int, int]  # x, y, w, h: where on the canvas the image is painted
    image: str  # the URL fetched

    @classmethod
    def from_row(cls, row) -> "CanvasSource":
        manifest, manifest_label, canvas, label, position, cw, ch, rx, ry, rw, rh, image = row
        return cls(manifest, manifest_label, canvas, label, int(position), (int(cw), int(ch)),
                   (int(rx), int(ry), int(rw), int(rh)), image)

    def row(self, path: str) -> tuple:
        return (path, self.manifest, self.manifest_label, self.canvas, self.label, self.position, *self.canvas_size,
                *self.region, self.image)

    def to_canvas(self, box, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """``box`` (x0, y0, x1, y1 in the pixels of the image as indexed, ``image_size`` (w, h)) → x, y, w, h in
        canvas coordinates: scaled onto the painted region, widened to whole units, kept on the canvas."""
        rx, ry, rw, rh = self.region
        sx, sy = rw / image_size[0], rh / image_size[1]
        x0, y0 = math.floor(rx + box[0] * sx), math.floor(ry + box[1] * sy)
        x1, y1 = math.ceil(rx + box[2] * sx), math.ceil(ry + box[3] * sy)
        x0, y0 = min(max(0, x0), self.canvas_size[0] - 1), min(max(0, y0), self.canvas_size[1] - 1)
        x1, y1 = max(x0 + 1, min(x1, self.canvas_size[0])), max(y0 + 1, min(y1, self.canvas_size[1]))
        return x0, y0, x1 - x0, y1 - y0

    def target(self, box, image_size: tuple[int, int]) -> str:
        """The canvas region of ``box`` as a Web Annotation target: ``canvas-id#xywh=x,y,w,h`` (the whole canvas
        without a box)."""
        if box is None:
            return self.canvas
        return f"{self.canvas}#xywh={','.join(map(str, self.to_canvas(box, image_size)))}"

    def as_json(self, box=None, image_size: tuple[int, int] | None = None) -> dict:
        """What a result says of its canvas: manifest, canvas, label, size and, given the image's ``box``, the
        box in canvas coordinates (``xywh``, else null) and the annotation target (else the whole canvas)."""
        found = {"manifest": self.manifest, "manifest_label": self.manifest_label, "canvas": self.canvas,
                 "label": self.label, "canvas_width": self.canvas_size[0], "canvas_height": self.canvas_size[1]}
        boxed = box is not None and image_size is not None
        found["xywh"] = list(self.to_canvas(box, image_size)) if boxed else None
        found["target"] = self.target(box, image_size) if boxed else self.canvas
        return found

    def describe(self, box=None, image_size: tuple[int, int] | None = None) -> str:
        """One line's worth: ``canvas 'f. 3r' of 'Manifest label' <canvas id>#xywh=...``."""
        where = self.target(box, image_size) if box is not None and image_size is not None else self.canvas
        return f"canvas {self.label or '(no label)'!r} of {self.manifest_label or self.manifest!r} {where}"
