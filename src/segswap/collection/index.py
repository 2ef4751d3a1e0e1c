"""A persistent index of an image collection: backbone features and shortlisting descriptors.

An index is a folder::

    index.sqlite                      settings, and one row per image: path, change signature, size,
                                      where its features are, its regional descriptors
    features/00000.f16 ...            feature shards (see :mod:`segswap.collection.shards`): each
                                      image's C×h×w float16 stride-16 map at the index's size
    descriptors-<generation>.faiss    FAISS inner-product index over every image's regional descriptors
    settings.json                     a copy of the settings that say how to index the folder again (root,
                                      backbone, size, channels), for when index.sqlite cannot be read
    .lock                             held by the one process writing

an index made from a IIIF manifest (`segswap index MANIFEST`, :mod:`segswap.iiif`) indexes its cache folder
and records, in the ``canvases`` table, the manifest, canvas and label of each cached file
(:mod:`segswap.collection.canvases`);

and, in ``index.sqlite``'s ``keypoints`` table, each image's local features for the keypoint matchers
(:mod:`segswap.keypoints`; the extractor and its settings in the ``keypoints`` setting): N×3 float32
(x, y in the image's own pixels, score) and N×D float16 descriptors. An index made before keypoints
were stored has the table empty; `segswap index` adds them (:func:`segswap.collection.update.update_index`).
With `segswap index --details`, the ``detail_keypoints`` table holds a second, finer layer of them (the
``detail_keypoints`` setting): a detail a tenth of an image's width has too few keypoints at the first
layer's scale for a homography (:mod:`segswap.collection.search`).

Writes go through :class:`IndexWriter`: features are appended and flushed, then their rows commit in
one transaction per batch, which also bumps the index's generation. The FAISS file is derived data
named after the generation it reflects; a reader rebuilds it from the rows when it is missing, stale or
unreadable. :func:`segswap.collection.update.update_index` keeps an index in step with its folder.

Damage is found where it is met: a feature block by its length and the checksum its row records (an
index made before checksums has none until its next update), the database by SQLite's errors saying
the file is damaged. Either is an :class:`~segswap.errors.IndexDamagedError` naming the damaged part and
`segswap index`, which repairs it (:func:`segswap.collection.update.update_index`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexDamagedError, SegswapError
from ..io.files import atomic_path, write_bytes_atomic
from ..keypoints import SPECS
from . import shards
from .canvases import COLUMNS as CANVAS_COLUMNS, SCHEMA as CANVAS_SCHEMA, CanvasSource
from .descriptor import DescriptorIndex, mean_descriptor, regional_descriptors

FORMAT_VERSION = 1
_IMAGE_COLUMNS = "i.id, i.path, i.width, i.height, i.grid_h, i.grid_w, " + ", ".join(f"c.{c}" for c in CANVAS_COLUMNS)
#: The settings copied into settings.json: what indexing the folder again needs when index.sqlite is damaged.
SETTINGS_COPIED = ("root", "backbone", "size", "channels")

#: Keypoints extracted finer for detail queries (`segswap index --details`): the keypoints table's layout.
DETAIL_SCHEMA = """
CREATE TABLE IF NOT EXISTS detail_keypoints (
    id INTEGER PRIMARY KEY,         -- the same as keypoints, extracted finer for detail queries
    count INTEGER NOT NULL,
    points BLOB NOT NULL,
    descriptors BLOB NOT NULL
);
"""
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
    descriptors BLOB NOT NULL,      -- R×C float16 regional descriptors, whole image first
    crc32 INTEGER                   -- the block's shards.checksum; NULL: not recorded, -1: found damaged
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
""" + CANVAS_SCHEMA + DETAIL_SCHEMA


@dataclass(frozen=True)
class IndexedImage:
    """One indexed image: its id, absolute path, own size (w, h), feature grid (h, w) and, for an image fetched
    from a IIIF manifest, its canvas."""

    id: int
    path: Path
    size: tuple[int, int]
    grid: tuple[int, int]
    canvas: CanvasSource | None = None


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
    checksum: int | None = None  # the block's shards.checksum


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

    A damaged part met while reading is an :class:`~segswap.errors.IndexDamagedError` naming it and the
    repair; a damaged FAISS file is rebuilt from the rows instead.
    """

    def __init__(self, path: str | os.PathLike, *, snapshot: bool = True):
        self.path = Path(path)
        if not (self.path / "index.sqlite").is_file():
            raise SegswapError(f"{self.path}: not a segswap index (no index.sqlite); make one with "
                               f"`segswap index DIR --index {self.path}`")
        self.root: Path | None = None  # the indexed folder, once the settings are read
        self.db = _connect(self.path / "index.sqlite")
        if not _has_tables(self.db):
            raise IndexDamagedError(f"{self.path / 'index.sqlite'} is damaged (it holds no tables): "
                                    f"{_repair_words(self.path, None)}")
        self._shards = shards.ShardReader(self.path)
        if snapshot:
            self._open_snapshot()
        settings = dict(self.db.execute("SELECT key, value FROM settings"))
        if int(settings.get("format", -1)) != FORMAT_VERSION:
            raise SegswapError(f"{self.path}: index format {settings.get('format')} is not {FORMAT_VERSION}; rebuild it")
        self.root = self.db.root = Path(settings["root"])
        self.backbone = settings["backbone"]
        self.size = int(settings["size"])
        self.channels = int(settings["channels"])
        #: The keypoint extractor the index stores features of: {"matcher": name, "conf": {...}}, or None.
        self.keypoint_settings = json.loads(settings["keypoints"]) if "keypoints" in settings else None
        #: The same for the finer layer detail queries use (`segswap index --details`), or None.
        self.detail_keypoint_settings = (json.loads(settings["detail_keypoints"]) if "detail_keypoints" in settings
                                         else None)
        tables = {name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self._has_keypoints_table = "keypoints" in tables
        self._has_detail_table = "detail_keypoints" in tables
        #: An index made before canvases were recorded has no such table (and no canvases).
        self._has_canvases_table = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'canvases'").fetchone() is not None
        #: Whether rows record their block's checksum (an index made before they did has no such column).
        self.has_checksums = any(name == "crc32" for _, name, *_ in self.db.execute("PRAGMA table_info(images)"))
        self._descriptors: DescriptorIndex | None = None
        #: Set when descriptor_index() found the FAISS file of this generation unreadable and rebuilt it.
        self.descriptor_file_damaged = False

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def images(self) -> list[IndexedImage]:
        """Every indexed image, by id."""
        rows = self.db.execute(f"SELECT {_IMAGE_COLUMNS} FROM {self._images_joined()} ORDER BY i.id")
        return [self._indexed_image(row) for row in rows]

    def find(self, path) -> IndexedImage | None:
        """The indexed image at ``path`` (a file inside the indexed folder), or None."""
        try:
            rel = Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        row = self.db.execute(f"SELECT {_IMAGE_COLUMNS} FROM {self._images_joined()} WHERE i.path = ?", (rel,)).fetchone()
        return None if row is None else self._indexed_image(row)

    def canvases(self) -> dict[str, CanvasSource]:
        """The canvas of each image fetched from a IIIF manifest, by path relative to the indexed folder
        (empty for a folder's index)."""
        if not self._has_canvases_table:
            return {}
        columns = ", ".join(CANVAS_COLUMNS)
        return {path: CanvasSource.from_row(row) for path, *row in self.db.execute(f"SELECT path, {columns} FROM canvases")}

    def _images_joined(self) -> str:
        return ("images i LEFT JOIN canvases c ON c.path = i.path" if self._has_canvases_table else
                "images i LEFT JOIN (SELECT NULL AS path, " + ", ".join(f"NULL AS {c}" for c in CANVAS_COLUMNS)
                + ") c ON 0")

    def _indexed_image(self, row) -> IndexedImage:
        i, p, w, h, gh, gw, *canvas = row
        return IndexedImage(i, self.root / p, (w, h), (gh, gw), CanvasSource.from_row(canvas) if canvas[0] else None)

    def listing(self) -> list[tuple[int, str, tuple[int, int], str]]:
        """Every image as (id, path relative to the indexed folder, own size (w, h), content SHA-1),
        by path: what a viewer lists, without the feature rows."""
        rows = self.db.execute("SELECT id, path, width, height, sha1 FROM images ORDER BY path")
        return [(i, p, (w, h), sha1) for i, p, w, h, sha1 in rows]

    def feature_locations(self) -> dict[int, tuple[str, int, tuple[int, int, int]]]:
        """Every image's features as ``id → (shard file, byte offset, (C, h, w))``: enough for another
        process to read them from the shared folder without opening the index. A shard missing, or ending
        before a block, is an :class:`IndexDamagedError` here rather than a failed task there."""
        for shard, (end, count) in self._block_ends().items():
            try:
                short = self._shards.size(shard) < end
            except shards.DamagedBlock as err:
                raise self._damage_error(f"{err.path} is missing (the features of {count} images)") from None
            if short:
                raise self._damage_error(f"{shards.shard_path(self.path, shard)} ends before the features of some "
                                         f"of its {count} images")
        rows = self.db.execute("SELECT id, shard, offset, grid_h, grid_w FROM images")
        return {i: (str(shards.shard_path(self.path, shard)), offset, (self.channels, gh, gw))
                for i, shard, offset, gh, gw in rows}

    def image(self, image_id: int) -> IndexedImage:
        row = self.db.execute(f"SELECT {_IMAGE_COLUMNS} FROM {self._images_joined()} WHERE i.id = ?", (image_id,)).fetchone()
        if row is None:
            raise KeyError(image_id)
        return self._indexed_image(row)

    def features(self, image_id: int) -> np.ndarray:
        """The image's C×h×w float16 features: a read-only view of the memory-mapped shard, checked against
        its length and its recorded checksum (:class:`IndexDamagedError` naming the image otherwise)."""
        path, shard, offset, gh, gw, recorded = self.db.execute(
            f"SELECT path, shard, offset, grid_h, grid_w, {'crc32' if self.has_checksums else 'NULL'} FROM images "
            "WHERE id = ?", (image_id,)).fetchone()
        try:
            return self._shards.block(shard, offset, (self.channels, gh, gw), recorded)
        except shards.DamagedBlock as err:
            raise IndexDamagedError(f"{self.path}: the features of {path} are damaged ({err}); repair them with "
                                    f"{_repair_command(self.path, self.root)}") from None

    def _layer(self, layer: str) -> tuple[str, dict | None, bool]:
        """(table, settings, whether the table exists) of a keypoint ``layer``: "keypoints" or "details"."""
        if layer == "details":
            return "detail_keypoints", self.detail_keypoint_settings, self._has_detail_table
        return "keypoints", self.keypoint_settings, self._has_keypoints_table

    def keypoints(self, image_id: int, layer: str = "keypoints") -> dict | None:
        """The image's stored local features as :meth:`segswap.keypoints.KeypointMatcher.extract` gives
        them (``keypoints`` N×2, ``scores``, ``descriptors`` N×D float32, ``image_size``, ``scale``), or None.
        ``layer``: "keypoints" (every index with keypoints) or "details" (the finer ones for detail queries)."""
        table, settings, exists = self._layer(layer)
        if not exists or settings is None:
            return None
        row = self.db.execute(f"SELECT k.count, k.points, k.descriptors, i.width, i.height FROM {table} k "
                              "JOIN images i ON i.id = k.id WHERE k.id = ?", (image_id,)).fetchone()
        if row is None:
            return None
        count, points, descriptors, width, height = row
        dimension = _keypoint_dimension(settings)
        if len(points) != 12 * count or (len(descriptors) != 2 * count * dimension if dimension
                                         else len(descriptors) % max(1, 2 * count)):
            return None  # damaged: as if missing (without_keypoints() lists it, `segswap index` extracts it again)
        points = np.frombuffer(points, np.float32).reshape(count, 3)
        conf = settings["conf"]
        return {"keypoints": points[:, :2], "scores": points[:, 2],
                "descriptors": np.frombuffer(descriptors, np.float16).reshape(count, -1).astype(np.float32),
                "image_size": (width, height), "scale": max(width, height) / conf["resize"]}

    def without_keypoints(self, layer: str = "keypoints") -> list[tuple[int, str]]:
        """(id, path relative to the indexed folder) of the images whose keypoints (of ``layer``) are not
        stored, or are stored damaged (blobs of another length than their count says)."""
        table, settings, exists = self._layer(layer)
        if not exists:
            return self.db.execute("SELECT id, path FROM images ORDER BY id").fetchall()
        dimension = _keypoint_dimension(settings)
        descriptors_wrong = ("LENGTH(k.descriptors) != 2 * k.count * ?" if dimension else
                             "LENGTH(k.descriptors) % MAX(1, 2 * k.count) != 0")
        return self.db.execute(f"SELECT i.id, i.path FROM images i LEFT JOIN {table} k ON k.id = i.id "
                               f"WHERE k.id IS NULL OR LENGTH(k.points) != 12 * k.count OR {descriptors_wrong} "
                               "ORDER BY i.id", (dimension,) if dimension else ()).fetchall()

    def regional_descriptors(self) -> tuple[list[int], list[np.ndarray]]:
        """Image ids and their R×C float32 regional descriptors (whole image first), by id."""
        ids, sets = [], []
        for image_id, path, blob in self.db.execute("SELECT id, path, descriptors FROM images ORDER BY id"):
            ids.append(image_id)
            sets.append(self._descriptor_rows(blob, path).astype(np.float32))
        return ids, sets

    def descriptor_index(self) -> DescriptorIndex:
        """The FAISS index of every image's regional descriptors (read, or rebuilt when stale or unreadable)."""
        if self._descriptors is None:
            target = self.path / f"descriptors-{self.generation}.faiss"
            if target.is_file():
                (vectors,) = self.db.execute("SELECT COALESCE(SUM(LENGTH(descriptors)), 0) FROM images").fetchone()
                self._descriptors = DescriptorIndex.read(target, self.channels, vectors // (2 * self.channels))
                self.descriptor_file_damaged = self._descriptors is None
            if self._descriptors is None:
                self._descriptors = self._rebuild_descriptors(target)
        return self._descriptors

    @property
    def generation(self) -> int:
        """Bumped by every committed change."""
        return int(self.db.execute("SELECT value FROM settings WHERE key = 'generation'").fetchone()[0])

    def close(self) -> None:
        self._shards.close()
        self.db.close()

    def _open_snapshot(self, attempts: int = 5) -> None:
        missing = None
        for _ in range(attempts):
            self.db.execute("BEGIN")
            used = [shard for (shard,) in self.db.execute("SELECT DISTINCT shard FROM images")]  # the snapshot starts here
            try:
                self._shards.map_all(used)
                return
            except shards.DamagedBlock as err:  # a compaction removed a shard between the two reads: start again
                self.db.rollback()
                self._shards.close()
                # A compaction's rows point at new shards once it deletes the old ones: a shard missing
                # from two snapshots in a row is gone for good.
                if err.shard == missing:
                    (count,) = self.db.execute("SELECT COUNT(*) FROM images WHERE shard = ?", (err.shard,)).fetchone()
                    raise self._damage_error(f"{err.path} is missing (the features of {count} images)") from None
                missing = err.shard
        raise SegswapError(f"{self.path}: the index kept changing while being opened; try again")

    def _block_ends(self) -> dict[int, tuple[int, int]]:
        """Each shard rows point at → (the end of its last block in bytes, how many blocks)."""
        c = self.channels
        return {shard: (end, count) for shard, end, count in self.db.execute(
            f"SELECT shard, MAX(offset + 2 * {c} * grid_h * grid_w), COUNT(*) FROM images GROUP BY shard")}

    def _damage_error(self, what: str) -> IndexDamagedError:
        root = self.root or Path(self.db.execute("SELECT value FROM settings WHERE key = 'root'").fetchone()[0])
        return IndexDamagedError(f"{self.path} is damaged: {what}; repair it with {_repair_command(self.path, root)}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _descriptor_rows(self, blob: bytes, path: str) -> np.ndarray:
        if not blob or len(blob) % (2 * self.channels):
            raise IndexDamagedError(f"{self.path}: the descriptors of {path} are damaged (a blob of {len(blob)} bytes); "
                                    f"repair them with {_repair_command(self.path, self.root)}")
        return np.frombuffer(blob, dtype=np.float16).reshape(-1, self.channels)

    def _rebuild_descriptors(self, target: Path) -> DescriptorIndex:
        blobs = self.db.execute("SELECT path, descriptors FROM images")
        index = DescriptorIndex(mean_descriptor((self._descriptor_rows(b, p) for p, b in blobs), self.channels))
        for image_id, path, blob in self.db.execute("SELECT id, path, descriptors FROM images"):
            index.add(image_id, self._descriptor_rows(blob, path))
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
    """Make ``path`` an empty index of folder ``root`` (nothing happens if it already is one, but for its
    settings.json written where missing); ``keypoints``: the keypoint extractor whose features it stores
    ({"matcher": name, "conf": {...}}), or None."""
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
        settings = dict(db.execute("SELECT key, value FROM settings"))
    db.close()
    copy = json.dumps({key: settings[key] for key in SETTINGS_COPIED}, sort_keys=True)
    if _settings_copy(path) != json.loads(copy):  # an index made before the copy, or one set aside
        write_bytes_atomic(path / "settings.json", copy.encode())


class IndexLock:
    """The lock (``.lock``) that the one process writing an index holds."""

    def __init__(self, index_dir: Path):
        self._file = open(Path(index_dir) / ".lock", "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise SegswapError(f"{index_dir}: another process is updating this index") from None

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class IndexWriter:
    """The one writer of an index (it holds the index's lock): commits batches of images, forgets
    deleted ones, compacts the shards. On opening it cuts off whatever a killed writer left uncommitted,
    and gives an index made before checksums were recorded their column."""

    def __init__(self, index: CollectionIndex):
        self.index = index
        self.db = index.db
        self._lock = IndexLock(index.path)
        if self.db.in_transaction:  # a reader's snapshot: the writer works on the latest state
            self.db.rollback()
        if not index.has_checksums:
            with self.db:
                self.db.execute("ALTER TABLE images ADD COLUMN crc32 INTEGER")
            index.has_checksums = True
        shards.recover(index.path, self._committed_ends())
        self._shards = shards.ShardWriter(index.path)

    def add(self, entries: list[IndexEntry]) -> None:
        """Write ``entries`` (new images, or new versions of indexed paths) in one committed batch."""
        rows = []
        for e in entries:
            feats = np.asarray(e.features)
            if feats.shape[0] != self.index.channels:
                raise SegswapError(f"{e.path}: features have {feats.shape[0]} channels, the index {self.index.channels}")
            block = np.ascontiguousarray(feats, dtype=np.float16)
            shard, offset = self._shards.append(block)
            descriptors = regional_descriptors(feats).astype(np.float16)
            rows.append((e.path, e.bytes, e.mtime_ns, e.sha1, e.size[0], e.size[1], feats.shape[1], feats.shape[2],
                         shard, offset, descriptors.tobytes(), shards.checksum(block)))
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
                     e.descriptors, e.checksum) for e in staged.images]
            self._shards = shards.ShardWriter(self.index.path)
        elif staged.file is not None:
            Path(staged.file).unlink(missing_ok=True)
        self._commit_rows(rows, staged.unreadable,
                          keypoints={e.path: e.keypoints for e in staged.images if e.keypoints is not None})

    def set_keypoint_settings(self, settings: dict, layer: str = "keypoints") -> None:
        """Store keypoints of ``settings``' extractor in ``layer`` from now on; those of another extractor
        are dropped (`segswap index` extracts them again)."""
        table, current, _ = self.index._layer(layer)
        with self.db:
            if layer == "details":
                self.db.execute(DETAIL_SCHEMA)  # an index made before the layer
            if current != settings:
                self.db.execute(f"DELETE FROM {table}")
            self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (table, json.dumps(settings, sort_keys=True)))
        if layer == "details":
            self.index.detail_keypoint_settings, self.index._has_detail_table = settings, True
        else:
            self.index.keypoint_settings, self.index._has_keypoints_table = settings, True

    def set_canvases(self, canvases: dict[str, CanvasSource]) -> None:
        """Make the ``canvases`` table hold exactly ``canvases`` (path relative to the indexed folder → its
        canvas), in one transaction."""
        with self.db:
            self.db.execute(CANVAS_SCHEMA)  # an index made before the table
            self.db.execute("DELETE FROM canvases")
            self.db.executemany(f"INSERT INTO canvases VALUES ({', '.join('?' * (1 + len(CANVAS_COLUMNS)))})",
                                [canvas.row(path) for path, canvas in canvases.items()])
        self.index._has_canvases_table = True

    def add_keypoints(self, found: dict[int, dict], layer: str = "keypoints") -> None:
        """Store the keypoints of indexed images (image id → extract()'s output) in ``layer``, in one transaction."""
        table, _, _ = self.index._layer(layer)
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)",
                                [(image_id, *keypoint_row(kp)) for image_id, kp in found.items()])

    def _commit_rows(self, rows: list[tuple], unreadable: list[tuple] = (), keypoints: dict | None = None) -> None:
        with self.db:
            self.db.executemany("DELETE FROM unreadable WHERE path = ?", [(r[0],) for r in rows])
            self.db.executemany("INSERT OR REPLACE INTO unreadable VALUES (?, ?, ?, ?)", unreadable)
            if not rows:
                return
            self.db.executemany(
                "INSERT INTO images (path, bytes, mtime_ns, sha1, width, height, grid_h, grid_w, shard, offset, descriptors, "
                "crc32) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET bytes = excluded.bytes, "
                "mtime_ns = excluded.mtime_ns, sha1 = excluded.sha1, width = excluded.width, height = excluded.height, "
                "grid_h = excluded.grid_h, grid_w = excluded.grid_w, shard = excluded.shard, offset = excluded.offset, "
                "descriptors = excluded.descriptors, crc32 = excluded.crc32", rows)
            # A new version of an image keeps its id: its old keypoints go, its new ones (if any) come.
            ids = dict(self.db.execute(f"SELECT path, id FROM images WHERE path IN ({','.join('?' * len(rows))})",
                                       [r[0] for r in rows]).fetchall())
            self.db.executemany("DELETE FROM keypoints WHERE id = ?", [(ids[r[0]],) for r in rows])
            if self.index._has_detail_table:  # extracted again by the pass that adds missing ones
                self.db.executemany("DELETE FROM detail_keypoints WHERE id = ?", [(ids[r[0]],) for r in rows])
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
            for table in ("keypoints", "detail_keypoints")[:1 + self.index._has_detail_table]:
                self.db.executemany(f"DELETE FROM {table} WHERE id IN (SELECT id FROM images WHERE path = ?)",
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
        moves = []
        for i in ids:
            block = np.array(self.index.features(i))
            moves.append((*fresh.append(block), shards.checksum(block), i))
        fresh.close()
        with self.db:
            self.db.executemany("UPDATE images SET shard = ?, offset = ?, crc32 = ? WHERE id = ?", moves)
        self.index._shards.close()
        for shard in old:
            shards.shard_path(self.index.path, shard).unlink(missing_ok=True)
        self._shards = shards.ShardWriter(self.index.path)

    def damaged_features(self) -> dict[str, str]:
        """Check every row's feature block (its shard there and long enough, its checksum) and descriptors;
        return ``path → what is damaged``. Those rows are marked damaged (checksum -1), so that they stay
        so whatever a later write puts at their place, until extracted again; the blocks found whole get
        the checksum an index made before checksums lacks (damage done before then goes unseen, but for
        a truncated shard and a block of zeros)."""
        damaged, marked, recorded = {}, [], []
        rows = self.db.execute("SELECT id, path, shard, offset, grid_h, grid_w, crc32, LENGTH(descriptors) FROM images "
                               "ORDER BY shard, offset").fetchall()
        reader = shards.ShardReader(self.index.path)
        for image_id, path, shard, offset, gh, gw, crc32, descriptor_bytes in rows:
            if shard not in reader.maps:
                reader.close()  # one shard mapped at a time (rows come by shard)
            try:
                block = reader.block(shard, offset, (self.index.channels, gh, gw), crc32)
            except shards.DamagedBlock as err:
                damaged[path] = str(err)
                marked.append((image_id,))
                continue
            if not descriptor_bytes or descriptor_bytes % (2 * self.index.channels):
                damaged[path] = "their descriptors have the wrong length"
                marked.append((image_id,))
            elif crc32 is None:
                recorded.append((shards.checksum(block), image_id))
        reader.close()
        with self.db:
            self.db.executemany("UPDATE images SET crc32 = -1 WHERE id = ?", marked)
            self.db.executemany("UPDATE images SET crc32 = ? WHERE id = ?", recorded)
        return damaged

    def close(self) -> None:
        self._shards.close()
        self.index._descriptors = None  # the rows changed: the next search reads (or rebuilds) afresh
        self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _bump_generation(self) -> None:
        self.db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _committed_ends(self) -> dict[int, int]:
        return {shard: end for shard, (end, _) in self.index._block_ends().items()}


def _keypoint_dimension(settings: dict | None) -> int | None:
    """The size of the descriptors ``settings``' extractor stores, or None if this version does not know it."""
    spec = SPECS.get(settings["matcher"]) if settings else None
    return spec.descriptor_dim if spec else None


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


def database_damage(index_dir: Path) -> str | None:
    """What is wrong with the index's database, by SQLite's own check, or None if nothing is. A database
    holding no tables beside feature shards has been emptied.

    ``integrity_check`` rather than ``quick_check``: it also finds an index (``path``'s) out of step with its
    table, which queries would meet later, and costs the same (both read every page: 0.1 s for 215 MB)."""
    db = sqlite3.connect(Path(index_dir) / "index.sqlite")
    try:
        (verdict,) = db.execute("PRAGMA integrity_check(1)").fetchone()
        if verdict != "ok":
            return verdict
        if not _has_tables(db) and shards.shard_numbers(index_dir):
            return "it holds no tables"
    except sqlite3.DatabaseError as err:
        if not _says_damaged(err):
            raise
        return str(err)
    finally:
        db.close()
    return None


def readable_settings(index_dir: Path) -> dict[str, str]:
    """The settings a damaged database still gives, else those of its copy (settings.json), else none."""
    db = sqlite3.connect(Path(index_dir) / "index.sqlite")
    try:
        return dict(db.execute("SELECT key, value FROM settings"))
    except sqlite3.DatabaseError:
        return _settings_copy(index_dir)
    finally:
        db.close()


def _settings_copy(index_dir: Path) -> dict[str, str]:
    try:
        return json.loads((Path(index_dir) / "settings.json").read_text())
    except (OSError, ValueError):
        return {}


def set_aside_damaged_database(index_dir: Path) -> Path:
    """Move the index's damaged database to ``index.sqlite.damaged`` (its write-ahead log beside it, as
    ``index.sqlite.damaged-wal``) and delete what only it made sense of: the feature shards, the FAISS
    files, staged shards. Holds the index's lock meanwhile. Returns where the database went."""
    index_dir = Path(index_dir)
    aside = index_dir / "index.sqlite.damaged"
    with IndexLock(index_dir):
        for suffix in ("-wal", ""):  # the log first: left behind alone, it would be replayed into the new database
            if (index_dir / f"index.sqlite{suffix}").exists():
                os.replace(index_dir / f"index.sqlite{suffix}", index_dir / f"index.sqlite.damaged{suffix}")
        (index_dir / "index.sqlite-shm").unlink(missing_ok=True)
        for shard in shards.shard_numbers(index_dir):
            shards.shard_path(index_dir, shard).unlink()
        for derived in index_dir.glob("descriptors-*.faiss"):
            derived.unlink()
        shutil.rmtree(index_dir / "staging", ignore_errors=True)
    return aside


def _repair_command(index_dir: Path, root: Path | None) -> str:
    root = root or _settings_copy(index_dir).get("root") or "FOLDER"
    return f"`segswap index {root} --index {index_dir}`"


def _repair_words(index_dir: Path, root: Path | None) -> str:
    """What repairs a damaged database, in words."""
    command = _repair_command(index_dir, root)
    folder = ", FOLDER the folder it indexes," if "FOLDER" in command else ""
    return f"{command}{folder} sets it aside and indexes the folder again"


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('settings', 'images')"
                      ).fetchone()[0] == 2


def _says_damaged(err: Exception) -> bool:
    """Whether SQLite's error says the database file is damaged (rather than busy, full, read-only...)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(err, sqlite3.DatabaseError) and code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT,
                                                                                          sqlite3.SQLITE_NOTADB)


def _reporting_damage(method):
    """``method`` of a connection or cursor of index.sqlite, its "the file is damaged" errors said in one line."""
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as err:
            if not _says_damaged(err):
                raise
            db = self if isinstance(self, sqlite3.Connection) else self.connection
            raise IndexDamagedError(f"{db.index_dir / 'index.sqlite'} is damaged ({err}): "
                                    f"{_repair_words(db.index_dir, db.root)}") from None
    return call


class _Cursor(sqlite3.Cursor):
    execute = _reporting_damage(sqlite3.Cursor.execute)
    executemany = _reporting_damage(sqlite3.Cursor.executemany)
    fetchone = _reporting_damage(sqlite3.Cursor.fetchone)
    fetchmany = _reporting_damage(sqlite3.Cursor.fetchmany)
    fetchall = _reporting_damage(sqlite3.Cursor.fetchall)
    __next__ = _reporting_damage(sqlite3.Cursor.__next__)


class _Database(sqlite3.Connection):
    """A connection to index.sqlite whose every query (and commit) reports the database damaged as an
    IndexDamagedError naming it and the repair: damage in any page shows first wherever a query reads it."""

    index_dir: Path
    root: Path | None = None  # the indexed folder, once known

    def cursor(self, factory=None):
        return super().cursor(factory or _Cursor)

    def execute(self, sql, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, parameters):
        return self.cursor().executemany(sql, parameters)

    commit = _reporting_damage(sqlite3.Connection.commit)
    __exit__ = _reporting_damage(sqlite3.Connection.__exit__)


def _connect(path: Path) -> _Database:
    db = sqlite3.connect(path, factory=_Database)
    db.index_dir = path.parent
    # WAL: a reader (a search) never blocks on, nor sees part of, a batch being written.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db
