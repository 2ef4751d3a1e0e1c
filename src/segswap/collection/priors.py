"""The objectness prior of indexed images, kept in the index folder (``<index>/priors.sqlite``).

The first command that needs an indexed image's prior (``segswap cosegment --index``) computes it and
stores it; later ones read it. Rows are keyed by the image's content hash (the index's SHA-1) and the
prior's version, so an edited image or a changed prior never reads a stale map. Indexing itself does
not run the prior: a collection that is only searched does not pay for it.

Stored per image: the saliency map at the prior's output size (long side 224 px) as an 8-bit PNG —
the Otsu cut already works on 256 levels — and the class token (384 float16), a whole-image descriptor.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS priors (
    sha1 TEXT NOT NULL,       -- the image's content hash, as in index.sqlite
    prior TEXT NOT NULL,      -- the prior's name and version (FocusPrior.key)
    saliency BLOB NOT NULL,   -- PNG, 8-bit, at the prior's output size
    cls BLOB NOT NULL,        -- float16 class token
    PRIMARY KEY (sha1, prior)
);
"""


@dataclass
class PriorMaps:
    """One image's prior: ``saliency`` (h×w float32 in [0, 1], at the prior's output size) and ``cls``."""

    saliency: np.ndarray
    cls: np.ndarray

    def saliency_at(self, size: tuple[int, int]) -> np.ndarray:
        """The saliency map resized to ``size`` = (width, height)."""
        return cv2.resize(self.saliency, size, interpolation=cv2.INTER_LINEAR).clip(0, 1)


class PriorStore:
    """Read and add stored priors of one index (see the module docstring)."""

    def __init__(self, index_path: Path, prior_key: str):
        self.prior_key = prior_key
        self.db = sqlite3.connect(Path(index_path) / "priors.sqlite", timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        with self.db:
            self.db.executescript(_SCHEMA)

    def get(self, sha1: str) -> PriorMaps | None:
        row = self.db.execute("SELECT saliency, cls FROM priors WHERE sha1 = ? AND prior = ?",
                              (sha1, self.prior_key)).fetchone()
        if row is None:
            return None
        levels = cv2.imdecode(np.frombuffer(row[0], np.uint8), cv2.IMREAD_GRAYSCALE)
        return PriorMaps(levels.astype(np.float32) / 255, np.frombuffer(row[1], np.float16).astype(np.float32))

    def put(self, sha1: str, maps: PriorMaps) -> None:
        ok, png = cv2.imencode(".png", np.round(np.clip(maps.saliency, 0, 1) * 255).astype(np.uint8))
        if not ok:
            raise OSError("could not encode a saliency map")
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO priors VALUES (?, ?, ?, ?)",
                            (sha1, self.prior_key, png.tobytes(), maps.cls.astype(np.float16).tobytes()))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM priors WHERE prior = ?", (self.prior_key,)).fetchone()[0]

    def close(self) -> None:
        self.db.close()
