"""A persistent index of an image collection: backbone features and shortlisting descriptors.

An index is a folder::

    index.sqlite                      settings, and one row per image: path, change signature, size,
                                      where its features are, its regional descriptors
    features/00000.f16 ...            feature shards (see :mod:`segswap.collection.shards`): each
                                      image's C×h×w float16 stride-16 map at the index's size
    descriptors-<generation>.faiss    FAISS inner-product index over every image's regional descriptors
    .lock                             held by the one process writing

and, in ``index.sqlite``'s ``keypoints`` table, each image's local features for the keypoint matchers
(:mod:`segswap.keypoints`; the extractor and its settings in the ``keypoints`` setting): N×3 float32
(x, y in the image's own pixels, score) and N×D float16 descriptors. An index made before keypoints
were stored has the table empty; `segswap index` adds them (:func:`segswap.collection.update.update_index`).

Writes go through :class:`IndexWriter`: features are appended and flushed, then their rows commit in
one transaction per batch, which also bumps the index's generation. The FAISS file is derived data
named after the generation it reflects; a reader rebuilds it from the rows when it is missing or stale.
:func:`segswap.collection.update.update_index` keeps an index in step with its folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SegswapError
from ..io.files import atomic_path
from . import shards
from .descriptor import DescriptorIndex, mean_descriptor, regional_descriptors

FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,      -- relative to the indexed folder, '/'-separated
    bytes INTEGER NOT NULL,         -- file size and modification time: the cheap change signature
    mtime_ns INTEGER NOT NULL,
    sha1 TEXT NOT NULL,             -- content hash, checked when the cheap signature changes
    width INTEGER NOT NULL,         -- the image's own size (after EXIF orientation)
    height INTEGER NOT NULL,
    grid_h INTEGER NOT NULL,        -- feature grid at the index's size
    grid_w INTEGER NOT NULL,
    shard INTEGER NOT NULL,         -- features/<shard>.f16
    offset INTEGER NOT NULL,        -- byte offset of the C×grid_h×grid_w float16 block
    descriptors BLOB NOT NULL       -- R×C float16 regional descriptors, whole image first
);
CREATE TABLE IF NOT EXISTS keypoints (
    id INTEGER PRIMARY KEY,         -- the image's id
    count INTEGER NOT NULL,
    points BLOB NOT NULL,           -- count×3 float32: x, y (the image's own pixels), score
    descriptors BLOB NOT NULL       -- count×D float16, unit length
);
CREATE TABLE IF NOT EXISTS unreadable (
    path TEXT PRIMARY KEY, bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class IndexedImage:
    """One indexed image: its id, absolute path, own size (w, h) and feature grid (h, w)."""

    id: int
    path: Path
    size: tuple[int, int]
    grid: tuple[int, int]


@dataclass
class IndexEntry:
    """An image to write: its path relative to the indexed folder, change signature and features."""

    path: str
    bytes: int
    mtime_ns: int
    sha1: str
    size: tuple[int, int]  # the image's own (w, h)
    features: np.ndarray  # C×h×w
    keypoints: dict | None = None  # KeypointMatcher.extract's output (keypoints, descriptors, scores), or None


@dataclass
class StagedImage:
    """An image whose features another process wrote into a staged shard: its row, less the shard number."""

    path: str
    bytes: int
    mtime_ns: int
    sha1: str
    size: tuple[int, int]  # the image's own (w, h)
    grid: tuple[int, int]
    offset: int  # byte offset of its block in the staged shard
    descriptors: bytes  # R×C float16 regional descriptors
    keypoints: tuple[int, bytes, bytes] | None = None  # keypoint_row()'s count, points and descriptors


@dataclass
class StagedShard:
    """What an indexing task (a cluster worker) produced: one shard file of float16 blocks, not yet part
    of the index, the rows pointing into it, and the files it could not read ``(path, bytes, mtime_ns,
    reason)``. :meth:`IndexWriter.adopt` commits it."""

    file: Path | None  # None when no image of the task was readable
    images: list[StagedImage]
    unreadable: list[tuple[str, int, int, str]]


class CollectionIndex:
    """An existing index folder, for reading. Create one with :func:`create_index`.

    With ``snapshot`` (the default) the index reads as it was when opened, whatever a writer commits
    meanwhile: one read transaction holds the rows, and every shard they point at is mapped at once,
    so a compaction that deletes shards afterwards takes nothing from under this reader.
    """

    def __init__(self, path: str | os.PathLike, *, snapshot: bool = True):
        self.path = Path(path)
        if not (self.path / "index.sqlite").is_file():
            raise SegswapError(f"{self.path}: not a segswap index (no index.sqlite); make one with "
                               f"`segswap index DIR --index {self.path}`")
        self.db = _connect(self.path / "index.sqlite")
        self._shards = shards.ShardReader(self.path)
        if snapshot:
            self._open_snapshot()
        settings = dict(self.db.execute("SELECT key, value FROM settings"))
        if int(settings.get("format", -1)) != FORMAT_VERSION:
            raise SegswapError(f"{self.path}: index format {settings.get('format')} is not {FORMAT_VERSION}; rebuild it")
        self.root = Path(settings["root"])
        self.backbone = settings["backbone"]
        self.size = int(settings["size"])
        self.channels = int(settings["channels"])
        #: The keypoint extractor the index stores features of: {"matcher": name, "conf": {...}}, or None.
        self.keypoint_settings = json.loads(settings["keypoints"]) if "keypoints" in settings else None
        self._has_keypoints_table = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'keypoints'").fetchone() is not None
        self._descriptors: DescriptorIndex | None = None

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def images(self) -> list[IndexedImage]:
        """Every indexed image, by id."""
        rows = self.db.execute("SELECT id, path, width, height, grid_h, grid_w FROM images ORDER BY id")
        return [IndexedImage(i, self.root / p, (w, h), (gh, gw)) for i, p, w, h, gh, gw in rows]

    def listing(self) -> list[tuple[int, str, tuple[int, int], str]]:
        """Every image as (id, path relative to the indexed folder, own size (w, h), content SHA-1),
        by path: what a viewer lists, without the feature rows."""
        rows = self.db.execute("SELECT id, path, width, height, sha1 FROM images ORDER BY path")
        return [(i, p, (w, h), sha1) for i, p, w, h, sha1 in rows]

    def feature_locations(self) -> dict[int, tuple[str, int, tuple[int, int, int]]]:
        """Every image's features as ``id → (shard file, byte offset, (C, h, w))``: enough for another
        process to read them from the shared folder without opening the index."""
        rows = self.db.execute("SELECT id, shard, offset, grid_h, grid_w FROM images")
        return {i: (str(shards.shard_path(self.path, shard)), offset, (self.channels, gh, gw))
                for i, shard, offset, gh, gw in rows}

    def image(self, image_id: int) -> IndexedImage:
        row = self.db.execute("SELECT id, path, width, height, grid_h, grid_w FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise KeyError(image_id)
        i, p, w, h, gh, gw = row
        return IndexedImage(i, self.root / p, (w, h), (gh, gw))

    def features(self, image_id: int) -> np.ndarray:
        """The image's C×h×w float16 features: a read-only view of the memory-mapped shard."""
        shard, offset, gh, gw = self.db.execute(
            "SELECT shard, offset, grid_h, grid_w FROM images WHERE id = ?", (image_id,)).fetchone()
        return self._shards.block(shard, offset, (self.channels, gh, gw))

    def keypoints(self, image_id: int) -> dict | None:
        """The image's stored local features as :meth:`segswap.keypoints.KeypointMatcher.extract` gives
        them (``keypoints`` N×2, ``scores``, ``descriptors`` N×D float32, ``image_size``, ``scale``), or None."""
        if not self._has_keypoints_table or self.keypoint_settings is None:
            return None
        row = self.db.execute("SELECT k.count, k.points, k.descriptors, i.width, i.height FROM keypoints k "
                              "JOIN images i ON i.id = k.id WHERE k.id = ?", (image_id,)).fetchone()
        if row is None:
            return None
        count, points, descriptors, width, height = row
        points = np.frombuffer(points, np.float32).reshape(count, 3)
        conf = self.keypoint_settings["conf"]
        return {"keypoints": points[:, :2], "scores": points[:, 2],
                "descriptors": np.frombuffer(descriptors, np.float16).reshape(count, -1).astype(np.float32),
                "image_size": (width, height), "scale": max(width, height) / conf["resize"]}

    def without_keypoints(self) -> list[tuple[int, str]]:
        """(id, path relative to the indexed folder) of the images whose keypoints are not stored."""
        if not self._has_keypoints_table:
            return self.db.execute("SELECT id, path FROM images ORDER BY id").fetchall()
        return self.db.execute("SELECT i.id, i.path FROM images i LEFT JOIN keypoints k ON k.id = i.id "
                               "WHERE k.id IS NULL ORDER BY i.id").fetchall()

    def regional_descriptors(self) -> tuple[list[int], list[np.ndarray]]:
        """Image ids and their R×C float32 regional descriptors (whole image first), by id."""
        ids, sets = [], []
        for image_id, blob in self.db.execute("SELECT id, descriptors FROM images ORDER BY id"):
            ids.append(image_id)
            sets.append(self._descriptor_rows(blob).astype(np.float32))
        return ids, sets

    def descriptor_index(self) -> DescriptorIndex:
        """The FAISS index of every image's regional descriptors (read, or rebuilt when stale)."""
        if self._descriptors is None:
            target = self.path / f"descriptors-{self.generation}.faiss"
            self._descriptors = DescriptorIndex.load(target) if target.is_file() else self._rebuild_descriptors(target)
        return self._descriptors

    @property
    def generation(self) -> int:
        """Bumped by every committed change."""
        return int(self.db.execute("SELECT value FROM settings WHERE key = 'generation'").fetchone()[0])

    def close(self) -> None:
        self._shards.close()
        self.db.close()

    def _open_snapshot(self, attempts: int = 5) -> None:
        for _ in range(attempts):
            self.db.execute("BEGIN")
            used = [shard for (shard,) in self.db.execute("SELECT DISTINCT shard FROM images")]  # the snapshot starts here
            try:
                self._shards.map_all(used)
                return
            except FileNotFoundError:  # a compaction removed a shard between the two reads: start again
                self.db.rollback()
                self._shards.close()
        raise SegswapError(f"{self.path}: the index kept changing while being opened; try again")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _descriptor_rows(self, blob: bytes) -> np.ndarray:
        return np.frombuffer(blob, dtype=np.float16).reshape(-1, self.channels)

    def _rebuild_descriptors(self, target: Path) -> DescriptorIndex:
        blobs = self.db.execute("SELECT descriptors FROM images")
        index = DescriptorIndex(mean_descriptor((self._descriptor_rows(b) for (b,) in blobs), self.channels))
        for image_id, blob in self.db.execute("SELECT id, descriptors FROM images"):
            index.add(image_id, self._descriptor_rows(blob))
        try:
            with atomic_path(target) as tmp:
                index.save(tmp)
        except OSError:  # a read-only index still searches; it rebuilds this in memory each time
            return index
        for stale in self.path.glob("descriptors-*.faiss"):
            if stale != target:
                stale.unlink(missing_ok=True)
        return index


def create_index(path: Path, root: Path, backbone: str, size: int, channels: int, keypoints: dict | None = None) -> None:
    """Make ``path`` an empty index of folder ``root`` (nothing happens if it already is one); ``keypoints``:
    the keypoint extractor whose features it stores ({"matcher": name, "conf": {...}}), or None."""
    path.mkdir(parents=True, exist_ok=True)
    db = _connect(path / "index.sqlite")
    with db:
        db.executescript(_SCHEMA)
        if db.execute("SELECT COUNT(*) FROM settings").fetchone()[0] == 0:
            settings = {"format": FORMAT_VERSION, "root": str(root), "backbone": backbone, "size": size,
                        "channels": channels, "generation": 0}
            if keypoints is not None:
                settings["keypoints"] = json.dumps(keypoints, sort_keys=True)
            db.executemany("INSERT INTO settings VALUES (?, ?)",
                           [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in settings.items()])
    db.close()


class IndexWriter:
    """The one writer of an index (it holds the index's lock): commits batches of images, forgets
    deleted ones, compacts the shards. On opening it cuts off whatever a killed writer left uncommitted."""

    def __init__(self, index: CollectionIndex):
        self.index = index
        self.db = index.db
        self._lock = open(index.path / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SegswapError(f"{index.path}: another process is updating this index") from None
        if self.db.in_transaction:  # a reader's snapshot: the writer works on the latest state
            self.db.rollback()
        shards.recover(index.path, self._committed_ends())
        self._shards = shards.ShardWriter(index.path)

    def add(self, entries: list[IndexEntry]) -> None:
        """Write ``entries`` (new images, or new versions of indexed paths) in one committed batch."""
        rows = []
        for e in entries:
            feats = np.asarray(e.features)
            if feats.shape[0] != self.index.channels:
                raise SegswapError(f"{e.path}: features have {feats.shape[0]} channels, the index {self.index.channels}")
            shard, offset = self._shards.append(feats.astype(np.float16))
            descriptors = regional_descriptors(feats).astype(np.float16)
            rows.append((e.path, e.bytes, e.mtime_ns, e.sha1, e.size[0], e.size[1], feats.shape[1], feats.shape[2],
                         shard, offset, descriptors.tobytes()))
        self._shards.flush()
        self._commit_rows(rows, keypoints={e.path: keypoint_row(e.keypoints) for e in entries if e.keypoints is not None})

    def adopt(self, staged: StagedShard) -> None:
        """Make a staged shard the index's next shard and commit its rows and unreadable files, in one
        transaction. The file is renamed into place first: a crash before the commit leaves a shard no
        row uses, which the next writer's recovery deletes; a staged file never adopted (a task whose
        worker died, then ran again elsewhere) is not the index's."""
        rows = []
        if staged.images:
            self._shards.close()
            numbers = shards.shard_numbers(self.index.path)
            shard = numbers[-1] + 1 if numbers else 0
            target = shards.shard_path(self.index.path, shard)
            os.replace(staged.file, target)
            _fsync_folder(target.parent)
            rows = [(e.path, e.bytes, e.mtime_ns, e.sha1, e.size[0], e.size[1], e.grid[0], e.grid[1], shard, e.offset,
                     e.descriptors) for e in staged.images]
            self._shards = shards.ShardWriter(self.index.path)
        elif staged.file is not None:
            Path(staged.file).unlink(missing_ok=True)
        self._commit_rows(rows, staged.unreadable,
                          keypoints={e.path: e.keypoints for e in staged.images if e.keypoints is not None})

    def set_keypoint_settings(self, settings: dict) -> None:
        """Store keypoints of ``settings``' extractor from now on; those of another extractor are dropped
        (`segswap index` extracts them again)."""
        with self.db:
            if self.index.keypoint_settings != settings:
                self.db.execute("DELETE FROM keypoints")
            self.db.execute("INSERT OR REPLACE INTO settings VALUES ('keypoints', ?)", (json.dumps(settings, sort_keys=True),))
        self.index.keypoint_settings = settings
        self.index._has_keypoints_table = True

    def add_keypoints(self, found: dict[int, dict]) -> None:
        """Store the keypoints of indexed images (image id → extract()'s output) in one transaction."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO keypoints VALUES (?, ?, ?, ?)",
                                [(image_id, *keypoint_row(kp)) for image_id, kp in found.items()])

    def _commit_rows(self, rows: list[tuple], unreadable: list[tuple] = (), keypoints: dict | None = None) -> None:
        with self.db:
            self.db.executemany("DELETE FROM unreadable WHERE path = ?", [(r[0],) for r in rows])
            self.db.executemany("INSERT OR REPLACE INTO unreadable VALUES (?, ?, ?, ?)", unreadable)
            if not rows:
                return
            self.db.executemany(
                "INSERT INTO images (path, bytes, mtime_ns, sha1, width, height, grid_h, grid_w, shard, offset, descriptors) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET bytes = excluded.bytes, "
                "mtime_ns = excluded.mtime_ns, sha1 = excluded.sha1, width = excluded.width, height = excluded.height, "
                "grid_h = excluded.grid_h, grid_w = excluded.grid_w, shard = excluded.shard, offset = excluded.offset, "
                "descriptors = excluded.descriptors", rows)
            # A new version of an image keeps its id: its old keypoints go, its new ones (if any) come.
            ids = dict(self.db.execute(f"SELECT path, id FROM images WHERE path IN ({','.join('?' * len(rows))})",
                                       [r[0] for r in rows]).fetchall())
            self.db.executemany("DELETE FROM keypoints WHERE id = ?", [(ids[r[0]],) for r in rows])
            self.db.executemany("INSERT INTO keypoints VALUES (?, ?, ?, ?)",
                                [(ids[path], *row) for path, row in (keypoints or {}).items()])
            self._bump_generation()

    def mark_unreadable(self, path: str, nbytes: int, mtime_ns: int, reason: str) -> None:
        """Remember a file that could not be read, so it is retried only once it changes."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO unreadable VALUES (?, ?, ?, ?)", (path, nbytes, mtime_ns, reason))

    def touch(self, signatures: list[tuple[str, int, int]]) -> None:
        """Record new (bytes, mtime_ns) for files whose content did not change."""
        with self.db:
            self.db.executemany("UPDATE images SET bytes = ?, mtime_ns = ? WHERE path = ?", [(b, m, p) for p, b, m in signatures])

    def remove(self, paths: list[str]) -> None:
        """Forget ``paths`` (their feature bytes become dead until :meth:`compact`)."""
        with self.db:
            self.db.executemany("DELETE FROM keypoints WHERE id IN (SELECT id FROM images WHERE path = ?)",
                                [(p,) for p in paths])
            self.db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM unreadable WHERE path = ?", [(p,) for p in paths])
            if paths:
                self._bump_generation()

    def dead_fraction(self) -> float:
        """The fraction of shard bytes that belong to no row (deleted or replaced images)."""
        total = shards.total_bytes(self.index.path)
        (live,) = self.db.execute(f"SELECT COALESCE(SUM(2 * {self.index.channels} * grid_h * grid_w), 0) FROM images").fetchone()
        return 1 - live / total if total else 0.0

    def compact(self) -> None:
        """Copy live blocks into fresh shards, commit their new places, delete the old shards.

        A crash before the commit leaves the new shards unused, after it the old ones; either way the
        next writer's recovery removes them."""
        self._shards.close()
        old = shards.shard_numbers(self.index.path)
        fresh = shards.ShardWriter(self.index.path, first=(old[-1] + 1) if old else 0)
        ids = [i for (i,) in self.db.execute("SELECT id FROM images ORDER BY shard, offset").fetchall()]
        moves = [(*fresh.append(np.array(self.index.features(i))), i) for i in ids]
        fresh.close()
        with self.db:
            self.db.executemany("UPDATE images SET shard = ?, offset = ? WHERE id = ?", moves)
        self.index._shards.close()
        for shard in old:
            shards.shard_path(self.index.path, shard).unlink(missing_ok=True)
        self._shards = shards.ShardWriter(self.index.path)

    def close(self) -> None:
        self._shards.close()
        self.index._descriptors = None  # the rows changed: the next search reads (or rebuilds) afresh
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _bump_generation(self) -> None:
        self.db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _committed_ends(self) -> dict[int, int]:
        c = self.index.channels
        return dict(self.db.execute(f"SELECT shard, MAX(offset + 2 * {c} * grid_h * grid_w) FROM images GROUP BY shard"))


def keypoint_row(found: dict) -> tuple[int, bytes, bytes]:
    """An extract() output → the keypoints table's (count, points, descriptors)."""
    points = np.c_[np.asarray(found["keypoints"], np.float32).reshape(-1, 2), np.asarray(found["scores"], np.float32)]
    descriptors = np.asarray(found["descriptors"], np.float16)
    return len(points), points.astype(np.float32).tobytes(), descriptors.tobytes()


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable before the rows that rely on it commit."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    # WAL: a reader (a search) never blocks on, nor sees part of, a batch being written.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db
