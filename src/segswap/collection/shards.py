"""Feature shards of an index: append-only files of raw float16 blocks, read through memory maps.

A block is one image's C×h×w features; its shard number and byte offset live in the index's SQLite
row. Blocks are appended and flushed before the rows pointing at them commit, so the only damage a
crash can leave is bytes past the last committed block, which :func:`recover` cuts off.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: A shard is closed once it holds this many bytes (≈1,600 images at 480 px with EfficientNet-Lite2).
SHARD_BYTES = 256 * 2**20


def shard_path(index_dir: Path, shard: int) -> Path:
    return Path(index_dir) / "features" / f"{shard:05d}.f16"


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

    def block(self, shard: int, offset: int, shape: tuple[int, ...]) -> np.ndarray:
        start = offset // 2
        return self._map(shard)[start:start + int(np.prod(shape))].reshape(shape)

    def _map(self, shard: int) -> np.memmap:
        if shard not in self.maps:
            self.maps[shard] = np.memmap(shard_path(self.index_dir, shard), dtype=np.float16, mode="r")
        return self.maps[shard]

    def close(self) -> None:
        self.maps.clear()
