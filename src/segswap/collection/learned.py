"""Where an index keeps the weights `segswap learn` learned on its images, and whether they still fit it.

``IDX/learned/`` holds ``tail.safetensors`` (the pair model's backbone tail after ArtMiner's feature learning),
``transformer.safetensors`` (the pair model's other weights, adapted to the learned features) and
``learned.json`` (what they were learned from: the images' hash, the base weights, the seed, the settings,
the updates). Both weights files carry the images' hash in their metadata: weights learned on other images
than the index now holds are refused, not silently used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import SegswapError
from ..pair import LEARNED_RECORD, LEARNED_TAIL, LEARNED_TRANSFORMER
from .index import CollectionIndex
from .update import file_sha1

LEARNED_DIR = "learned"


def images_hash(index: CollectionIndex) -> str:
    """SHA-1 over the index's images (each relative path and content hash, in path order)."""
    digest = hashlib.sha1()
    for path, sha1 in index.db.execute("SELECT path, sha1 FROM images ORDER BY path"):
        digest.update(f"{path}\0{sha1}\n".encode())
    return digest.hexdigest()


def learned_folder(index: CollectionIndex) -> Path:
    return index.path / LEARNED_DIR


def learned_record(index: CollectionIndex) -> dict | None:
    """What the index's learned weights were learned from, or None if it has none (or they are unfinished)."""
    folder = learned_folder(index)
    if not all((folder / name).is_file() for name in (LEARNED_TAIL, LEARNED_TRANSFORMER, LEARNED_RECORD)):
        return None
    return json.loads((folder / LEARNED_RECORD).read_text())


def checked_learned(index: CollectionIndex) -> Path | None:
    """The folder of the index's learned weights if it has some and they were learned on the images it holds
    now; None without; a one-line :class:`SegswapError` when the images changed since."""
    record = learned_record(index)
    if record is None:
        return None
    if record.get("images_hash") != images_hash(index):
        raise SegswapError(f"{index.path} holds weights learned on other images than it now holds: learn again "
                           f"(segswap learn --index {index.path}) or pass --shipped")
    return learned_folder(index)


def benchmark_learned(index_dir: Path, images: list[Path]) -> tuple[Path, dict]:
    """For a benchmark run with the weights `segswap learn` learned on the index at ``index_dir`` (``segswap eval
    vpr|coseg --index``): their folder, and a record of what they were learned on (the index, its image count,
    how many of the benchmark's ``images`` it holds: all of them when learning ran on the benchmark itself, as
    ArtMiner's transductive protocol does). One line instead when the index holds no learned weights or holds
    them for other images than it now holds."""
    with CollectionIndex(index_dir) as index:
        folder = checked_learned(index)
        if folder is None:
            raise SegswapError(f"{index_dir} holds no learned weights: run segswap learn --index {index_dir} first")
        held = {sha1 for _, _, _, sha1 in index.listing()}
        record = learned_record(index)
    return folder, {"index": str(index_dir), "images_hash": record["images_hash"], "index_images": len(held),
                    "benchmark_images": len(images),
                    "benchmark_images_in_index": sum(file_sha1(path) in held for path in images)}


def learned_for(index: CollectionIndex, model: str | None, weights, shipped: bool) -> Path | None:
    """What a command's default pair model runs with on ``index``: its learned weights' folder
    (:func:`checked_learned`) unless a model or weights were chosen or ``shipped`` was asked for; else None."""
    if shipped or model is not None or weights is not None:
        return None
    return checked_learned(index)
