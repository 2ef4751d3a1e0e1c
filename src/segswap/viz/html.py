"""Self-contained HTML reports: rows of thumbnails with masks as overlays, boxes and captions.

Every picture is embedded as a ``data:`` URI, so a report opens from disk with no server, can be moved
or mailed, and refers to no other file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..io.files import write_bytes_atomic
from .overlay import fitted_size, highlight

#: Thumbnail height in px (an image more than segswap.viz.overlay.MAX_ASPECT times as wide is drawn less tall).
THUMB_HEIGHT = 160
BOX_COLOUR = (40, 220, 60)  # RGB

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin: 1.2em 0 0.3em; }
.summary { color: #555; } .note { color: #555; font-style: italic; margin: 0.2em 0; }
.row { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; } figure img { display: block; border: 1px solid #ccc; }
figcaption { font-size: 12px; max-width: 240px; overflow-wrap: anywhere; }
"""


@dataclass
class Tile:
    """One thumbnail: an RGB image, optionally tinted by a mask (any size, values in [0, 1]) and
    outlined by a box (x0, y0, x1, y1 in the image's pixels)."""

    image: np.ndarray
    caption: str
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None


@dataclass
class Row:
    title: str
    tiles: list[Tile]
    notes: list[str] = field(default_factory=list)


def thumbnail(tile: Tile) -> np.ndarray:
    """The tile's picture ``THUMB_HEIGHT`` px high (within ``MAX_ASPECT``), mask tinted and box drawn."""
    image = tile.image
    size = fitted_size(image.shape, THUMB_HEIGHT)
    scale = size[0] / image.shape[1]
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if tile.mask is not None:
        small = highlight(small, cv2.resize(tile.mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR))
    if tile.box is not None:
        x0, y0, x1, y1 = (round(v * scale) for v in tile.box)
        cv2.rectangle(small, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), BOX_COLOUR, 2)
    return small


def render_report(title: str, rows: list[Row], summary: list[str] = ()) -> str:
    """The report as one HTML document."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f'<p class="summary">{html.escape(line)}</p>' for line in summary]
    for row in rows:
        parts.append("<section>")
        parts.append(f"<h2>{html.escape(row.title)}</h2>")
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in row.notes]
        parts.append('<div class="row">')
        for tile in row.tiles:
            caption = html.escape(tile.caption)
            parts.append(f'<figure><img src="{_data_uri(thumbnail(tile))}" alt="{caption}">'
                         f"<figcaption>{caption}</figcaption></figure>")
        parts.append("</div>")
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_report(path: str | Path, title: str, rows: list[Row], summary: list[str] = ()) -> None:
    """Write the report to ``path`` atomically."""
    write_bytes_atomic(path, render_report(title, rows, summary).encode("utf-8"))


def _data_uri(rgb: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")
