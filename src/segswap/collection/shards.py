"""Feature shards of an index: append-only files of raw float16 blocks, read through memory maps.

A block is one image's C×h×w features; its shard number and byte offset live in the index's SQLite
row. Blocks are appended and flushed before the rows pointing at them commit, so the only damage a
crash can leave is bytes past the last committed block, which :func:`recover` cuts off. Other damage (a
shard deleted, truncated or overwritten) is found by the block's length and its :func:`checksum`, which
its row records.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

#: A shard is closed once it holds this many bytes (≈1,600 images at 480 px with EfficientNet-Lite2).
SHARD_BYTES = 256 * 2**20


def shard_path(index_dir: Path, shard: int) -> Path:
    return Path(index_dir) / "features" / f"{shard:05d}.f16"


def checksum(block: np.ndarray) -> int:
    """CRC-32 of a block's float16 bytes: recorded in its row at commit, compared when it is read."""
    return zlib.crc32(np.ascontiguousarray(block, dtype=np.float16))


class DamagedBlock(Exception):
    """A block that cannot be read as it was written: its shard (``path``) is missing, ends before it, or
    holds other bytes than its row's checksum says."""

    def __init__(self, shard: int, path: Path, what: str):
        super().__init__(f"{path} {what}")
        self.shard, self.path = shard, path


def shard_numbers(index_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in (Path(index_dir) / "features").glob("*.f16") if p.stem.isdigit())


class ShardWriter:
    """Appends blocks to the last shard (or to ``first`` and up), opening a new shard when one is full."""

    def __init__(self, index_dir: Path, first: int | None = None):
        self.index_dir = Path(index_dir)
        (self.index_dir / "features").mkdir(exist_ok=True)
        existing = shard_numbers(self.index_dir)
        self.shard = first if first is not None else (existing[-1] if existing else 0)
        self.file = None

    def append(self, block: np.ndarray) -> tuple[int, int]:
        """Write ``block`` (float16); return its (shard, byte offset)."""
        if self.file is None:
            self.file = open(shard_path(self.index_dir, self.shard), "ab")
        if self.file.tell() > 0 and self.file.tell() + block.nbytes > SHARD_BYTES:
            self.close()
            self.shard += 1
            self.file = open(shard_path(self.index_dir, self.shard), "ab")
        offset = self.file.tell()
        self.file.write(np.ascontiguousarray(block, dtype=np.float16).tobytes())
        return self.shard, offset

    def flush(self) -> None:
        """Put everything appended so far on disk (before committing rows that point at it)."""
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()
            self.file = None


def recover(index_dir: Path, committed_ends: dict[int, int]) -> None:
    """Cut each shard back to the end of its last committed block (``committed_ends``: shard → byte);
    delete shards no committed row uses."""
    for shard in shard_numbers(index_dir):
        path = shard_path(index_dir, shard)
        end = committed_ends.get(shard, 0)
        if end == 0:
            path.unlink()
        elif path.stat().st_size > end:
            with open(path, "r+b") as f:
                f.truncate(end)


def total_bytes(index_dir: Path) -> int:
    return sum(shard_path(index_dir, s).stat().st_size for s in shard_numbers(index_dir))


class ShardReader:
    """Memory-maps shards, on first use or all at once (:meth:`map_all`)."""

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        self.maps: dict[int, np.memmap] = {}

    def map_all(self, numbers) -> None:
        """Map shards ``numbers`` now: a mapped shard stays readable after a writer deletes its file."""
        for shard in numbers:
            self._map(shard)

    def block(self, shard: int, offset: int, shape: tuple[int, ...], recorded: int | None = None) -> np.ndarray:
        """The block at byte ``offset`` of ``shard``, checked against its ``recorded`` checksum (without
        one, for not being all zeros, as a crash can leave a file's end); :class:`DamagedBlock` when it
        cannot be read as it was written."""
        start, count = offset // 2, int(np.prod(shape))
        values = self._map(shard)[start:start + count]
        if values.size != count:
            raise DamagedBlock(shard, shard_path(self.index_dir, shard), "ends before them")
        if recorded is not None and checksum(values) != recorded:
            raise DamagedBlock(shard, shard_path(self.index_dir, shard), "holds other bytes than were written there")
        if recorded is None and not values.any():  # no checksum to go by, but features are never all zero
            raise DamagedBlock(shard, shard_path(self.index_dir, shard), "holds only zeros where they were")
        return values.reshape(shape)

    def size(self, shard: int) -> int:
        """The shard's length in bytes, as mapped."""
        return self._map(shard).nbytes

    def _map(self, shard: int) -> np.ndarray:
        if shard not in self.maps:
            path = shard_path(self.index_dir, shard)
            try:
                # Whole values only, and nothing to map in an emptied file: a truncated shard still opens.
                values = path.stat().st_size // 2
                self.maps[shard] = (np.memmap(path, dtype=np.float16, mode="r", shape=(values,)) if values
                                    else np.zeros(0, np.float16))
            except FileNotFoundError:
                raise DamagedBlock(shard, path, "is missing") from None
        return self.maps[shard]

    def close(self) -> None:
        self.maps.clear()
