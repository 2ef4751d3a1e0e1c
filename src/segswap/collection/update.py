"""`segswap index`: bring an index in step with its folder — new, changed and deleted files.

A file whose size and modification time match its row is skipped without being read; one whose
signature changed is hashed, and re-indexed only if its SHA-1 changed. Images are committed in batches
of ``COMMIT_EVERY``, so a killed run loses at most one batch and the next run carries on from there.

Damage is repaired before the scan: a database SQLite's integrity check finds damaged is set aside and
the folder indexed afresh; images whose feature blocks are damaged (their shard missing or short, their checksum wrong) are
extracted again, as if changed.

Each image's keypoints (:data:`~segswap.shipped.INDEX_KEYPOINTS`, where the keypoint wheels are installed)
are extracted from the same decoded pixels and committed with its row. An index that lacks them (made
before they were stored, or with ``keypoints=False``) gets them for every image the next time it is
updated with keypoints, from the image files, in batches that survive a kill. With ``details=True``
(`segswap index --details`) a second, finer layer (:data:`~segswap.shipped.DETAIL_KEYPOINTS`) is added the
same way after the scan, for the detail queries of `segswap search --box`; an index that has the layer keeps
it up to date.

With an ``engine`` (:mod:`segswap.cluster`) the files to index go out as tasks of ``TASK_IMAGES``: each
worker writes one staged shard under ``<index>/staging/`` (:func:`stage_features`) and the client
adopts the shards in task order (:meth:`~segswap.collection.index.IndexWriter.adopt`), so image ids are
those a single process gives, and a task run twice (its worker died) is committed once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backbone import DEFAULT_BACKBONE, get_backbone
from ..errors import ImageError, SegswapError
from ..grid import DEFAULT_SIZE, check_input_size
from ..io import load_image, pixels_to_tensor, resize_for_model
from ..io.paths import IMAGE_SUFFIXES, check_input_folder, list_images
from ..keypoints import get_matcher, install_command, is_installed
from ..progress import stage
from ..shipped import DETAIL_KEYPOINTS, INDEX_KEYPOINTS, shipped_backbone
from . import shards
from .canvases import CanvasSource
from .features import prefetched
from .descriptor import regional_descriptors
from .index import (CollectionIndex, IndexEntry, IndexWriter, StagedImage, StagedShard, create_index, database_damage,
                    keypoint_row, readable_settings, set_aside_damaged_database)

#: Images per committed batch: the most a killed run can lose.
COMMIT_EVERY = 32
#: Compact the shards when more than this fraction of their bytes belongs to deleted or replaced images.
COMPACT_ABOVE = 0.3
#: Images per task on a cluster: one staged shard each (≈60 MB at 480 px), large enough that 1M images
#: stay under 10,000 shard files, small enough that a dead worker loses little.
TASK_IMAGES = 128
STAGING = "staging"


@dataclass
class UpdateSummary:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    unreadable: int = 0  # files that cannot be read, all of them (not only those met in this run)
    seconds: float = 0.0
    compacted: bool = False
    keypoints_added: int = 0  # images of the index given their keypoints afterwards (an index made without them)
    detail_keypoints_added: int = 0  # images given the finer keypoint layer for detail queries
    repaired: int = 0  # indexed images extracted again because their features were damaged (changed or not)
    database_set_aside: bool = False  # the database was damaged: set aside, the folder indexed afresh
    descriptor_file_rebuilt: bool = False  # the FAISS file was unreadable: rebuilt from the rows

    def line(self) -> str:
        done = self.added + self.updated + self.repaired
        rate = f", {done / self.seconds:.1f} images/s" if done and self.seconds > 0 else ""
        return (f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged, "
                + (f"{self.repaired} repaired (damaged features), " if self.repaired else "")
                + f"{self.unreadable} unreadable (skipped) in {self.seconds:.1f} s{rate}"
                + ("; the damaged database set aside as index.sqlite.damaged, the folder indexed afresh"
                   if self.database_set_aside else "")
                + ("; descriptor file rebuilt (it was damaged)" if self.descriptor_file_rebuilt else "")
                + (f"; keypoints added to {self.keypoints_added} images" if self.keypoints_added else "")
                + (f"; detail keypoints added to {self.detail_keypoints_added} images"
                   if self.detail_keypoints_added else "")
                + ("; shards compacted" if self.compacted else ""))


def default_index_backbone() -> str:
    """The backbone of a new index: the default pair model's (so that it can read the index's features),
    or the default backbone if no trained weights are installed."""
    return shipped_backbone() or DEFAULT_BACKBONE


def index_keypoint_extractor(keypoints: bool | None = None):
    """The keypoint extractor an index stores features of (:data:`~segswap.shipped.INDEX_KEYPOINTS`), or None:
    ``keypoints`` False; None where the wheels are missing (said once on stderr); True requires them."""
    name, conf = INDEX_KEYPOINTS
    if keypoints is False:
        return None
    if keypoints is None and not is_installed(name):
        print(f"note: the index stores no keypoints; they need: {install_command(name)}", file=sys.stderr, flush=True)
        return None
    return get_matcher(name, **conf)  # True without the wheels: one line naming them


def update_index(root, path, *, backbone: str | None = None, size: int | None = None, runtime: str = "auto",
                 show_progress: bool = True, engine=None, keypoints: bool | None = None, details: bool | None = None,
                 canvases: dict[str, CanvasSource] | None = None) -> tuple[CollectionIndex, UpdateSummary]:
    """Create the index at ``path`` for folder ``root``, or bring it up to date; return it and what changed.

    ``backbone`` and ``size`` are fixed when the index is created; an existing index keeps its own.
    ``engine``: a :class:`segswap.cluster.DaskEngine` whose workers compute the features (they must see
    ``root`` and ``path`` at the same paths); None computes them here. ``keypoints``: store each image's
    keypoints (:func:`index_keypoint_extractor`; None: where the wheels are installed). ``details``: store the
    finer keypoint layer for detail queries (None: if the index has it; True requires the wheels). ``canvases``: the IIIF
    canvas of each file of ``root`` (path relative to it → :class:`CanvasSource`), for a folder fetched from a
    manifest (:mod:`segswap.iiif`): recorded before any image is indexed, replacing those recorded before.
    """
    start = time.perf_counter()
    root, path = check_input_folder(root).resolve(), Path(path)
    check_input_size(size)
    files = list_images(root)
    summary = UpdateSummary()
    if (path / "index.sqlite").is_file():
        backbone, size = _set_aside_if_damaged(path, root, backbone, size, summary)
    if not files and not (path / "index.sqlite").is_file():  # an existing index may be emptied
        raise SegswapError(f"{root}: no images found (files ending {', '.join(sorted(IMAGE_SUFFIXES))})")
    extractor = get_backbone(backbone or default_index_backbone(), runtime)
    keypointer = index_keypoint_extractor(keypoints)
    settings = None if keypointer is None else {"matcher": keypointer.name, "conf": keypointer.conf}
    create_index(path, root, extractor.name, size or DEFAULT_SIZE, extractor.channels, settings)
    index = CollectionIndex(path, snapshot=False)
    if index.root != root:
        raise SegswapError(f"{path}: indexes {index.root}, not {root}; choose another --index folder")
    if (backbone or index.backbone) != index.backbone or (size or index.size) != index.size:
        raise SegswapError(f"{path}: built with backbone {index.backbone} at {index.size} px; "
                           "use another --index folder for other settings")
    with IndexWriter(index) as writer:
        if settings is not None and index.keypoint_settings != settings:
            writer.set_keypoint_settings(settings)  # an index made before keypoints, or with other settings
        if canvases is not None:
            writer.set_canvases(canvases)
        with stage(f"checking the features of {len(index)} images", show_progress and len(index) > 0):
            damaged = writer.damaged_features()
        if damaged:
            causes = Counter(damaged.values())
            causes = "; ".join(what if len(causes) == 1 else f"{what}: {count}" for what, count in causes.items())
            print(f"warning: the features of {len(damaged)} image{'s' * (len(damaged) > 1)} are damaged ({causes}); "
                  "extracting them again", file=sys.stderr, flush=True)
        to_index, repairing = _scan(index, files, writer, summary, set(damaged))
        if to_index and engine is not None:
            _index_files_on(engine, index, writer, to_index, summary, runtime, show_progress, keypointer, repairing)
        elif to_index:
            _index_files(index, writer, to_index, summary, runtime, show_progress, keypointer, repairing)
        if keypointer is not None:
            _add_missing_keypoints(index, writer, keypointer, summary, show_progress)
        if details or (details is None and index.detail_keypoint_settings is not None):
            detailer = get_matcher(DETAIL_KEYPOINTS[0], **DETAIL_KEYPOINTS[1])
            detail_settings = {"matcher": detailer.name, "conf": detailer.conf}
            if index.detail_keypoint_settings != detail_settings:
                writer.set_keypoint_settings(detail_settings, layer="details")
            _add_missing_keypoints(index, writer, detailer, summary, show_progress, layer="details")
        if writer.dead_fraction() > COMPACT_ABOVE:
            writer.compact()
            summary.compacted = True
    summary.unreadable = index.db.execute("SELECT COUNT(*) FROM unreadable").fetchone()[0]
    index.descriptor_index()  # writes the FAISS file now rather than at the first search
    summary.descriptor_file_rebuilt = index.descriptor_file_damaged
    summary.seconds = time.perf_counter() - start
    return index, summary


def _set_aside_if_damaged(path: Path, root: Path, backbone: str | None, size: int | None,
                          summary: UpdateSummary) -> tuple[str | None, int | None]:
    """Set the index's database aside if SQLite finds it damaged, and say so; return the backbone and size
    to index the folder afresh with: those given, else the old index's where its settings can still be read."""
    damage = database_damage(path)
    if damage is None:
        return backbone, size
    old = readable_settings(path)
    if "root" in old and Path(old["root"]) != root:  # nothing is touched for another folder
        raise SegswapError(f"{path}: indexes {old['root']}, not {root}; choose another --index folder")
    aside = set_aside_damaged_database(path)
    print(f"warning: {path / 'index.sqlite'} is damaged ({damage}): set aside as {aside}; indexing {root} afresh",
          file=sys.stderr, flush=True)
    summary.database_set_aside = True
    return backbone or old.get("backbone"), size or (int(old["size"]) if "size" in old else None)


def _scan(index: CollectionIndex, files: list[Path], writer: IndexWriter, summary: UpdateSummary,
          damaged: set[str] = frozenset()) -> tuple[list[tuple[str, int, int, str | None]], set[str]]:
    """Compare the folder's image ``files`` with the rows; forget deleted files; return ``(path, bytes, mtime_ns, sha1 or
    None)`` of each file to (re-)index, and which of them are indexed files whose features are ``damaged``."""
    known = {p: (b, m, s) for p, b, m, s in index.db.execute("SELECT path, bytes, mtime_ns, sha1 FROM images")}
    failed = {p: (b, m) for p, b, m in index.db.execute("SELECT path, bytes, mtime_ns FROM unreadable")}
    on_disk, to_index, touched, repairing = set(), [], [], set()
    for file in files:
        rel = file.relative_to(index.root).as_posix()
        try:
            st = file.stat()
        except FileNotFoundError:  # deleted while we scanned
            continue
        on_disk.add(rel)
        signature = (st.st_size, st.st_mtime_ns)
        if rel in known:
            sha1 = known[rel][2] if known[rel][:2] == signature else file_sha1(file)
            if sha1 == known[rel][2] and known[rel][:2] != signature:
                touched.append((rel, *signature))
            if rel in damaged:
                to_index.append((rel, *signature, sha1))
                repairing.add(rel)
            elif sha1 != known[rel][2]:
                to_index.append((rel, *signature, sha1))
            else:
                summary.unchanged += 1
        elif failed.get(rel) != signature:
            to_index.append((rel, *signature, None))
    writer.touch(touched)
    gone = [p for p in set(known) | set(failed) if p not in on_disk]
    writer.remove(gone)
    summary.removed = sum(p in known for p in gone)
    return to_index, repairing


def decoded(path: Path, size: int, keypointer=None, sha1: str | None = None):
    """What indexing needs of one file, decoded once: (1×3×H×W tensor at the index's ``size``, the image's own
    (w, h), its pixels at the keypoint extractor's size or None, its SHA-1). Raises :class:`ImageError`."""
    try:
        rgb = load_image(path)
        sha1 = sha1 or file_sha1(path)
    except OSError as err:  # e.g. the file vanished or became unreadable after it was listed
        raise ImageError(f"{path}: {err.strerror or err}") from None
    small = keypointer.resized(rgb) if keypointer is not None else None
    return pixels_to_tensor(resize_for_model(rgb, size)), (rgb.shape[1], rgb.shape[0]), small, sha1


def _index_files(index: CollectionIndex, writer: IndexWriter, to_index: list, summary: UpdateSummary,
                 runtime: str, show_progress: bool, keypointer=None, repairing: set[str] = frozenset()) -> None:
    extractor = get_backbone(index.backbone, runtime)
    known = {p for (p,) in index.db.execute("SELECT path FROM images")}

    batch: list[IndexEntry] = []
    progress = tqdm(total=len(to_index), unit="img", desc="indexing", disable=not show_progress)
    load = lambda item: decoded(index.root / item[0], index.size, keypointer, item[3])  # noqa: E731
    for (rel, nbytes, mtime_ns, _), loaded in prefetched(load, to_index):
        if isinstance(loaded, ImageError):
            progress.write(f"warning: skipped {loaded}", file=sys.stderr)
            if rel in repairing:  # its damaged features cannot be made again: the image goes
                writer.remove([rel])
            writer.mark_unreadable(rel, nbytes, mtime_ns, str(loaded))
        else:
            tensor, image_size, small, sha1 = loaded
            found = keypointer.extract(small, image_size) if keypointer is not None else None
            batch.append(IndexEntry(rel, nbytes, mtime_ns, sha1, image_size, extractor(tensor)[0].numpy(), found))
        if len(batch) >= COMMIT_EVERY:
            _commit(writer, batch, known, summary, repairing)
            batch = []
        progress.update(1)
    _commit(writer, batch, known, summary, repairing)
    progress.close()


def _add_missing_keypoints(index: CollectionIndex, writer: IndexWriter, keypointer, summary: UpdateSummary,
                           show_progress: bool, layer: str = "keypoints") -> None:
    """Extract and store the keypoints (of ``layer``) of the indexed images that have none, from their files."""
    missing = index.without_keypoints(layer)
    if not missing:
        return
    progress = tqdm(total=len(missing), unit="img", desc="detail keypoints" if layer == "details" else "keypoints",
                    disable=not show_progress)

    def load(item):
        try:
            rgb = load_image(index.root / item[1])
        except OSError as err:
            raise ImageError(f"{index.root / item[1]}: {err.strerror or err}") from None
        return keypointer.resized(rgb), (rgb.shape[1], rgb.shape[0])

    batch: dict[int, dict] = {}
    for (image_id, rel), loaded in prefetched(load, missing):
        progress.update(1)
        if isinstance(loaded, ImageError):  # gone or damaged since it was indexed: the next scan sees it
            progress.write(f"warning: no keypoints for {loaded}", file=sys.stderr)
            continue
        batch[image_id] = keypointer.extract(*loaded)
        if len(batch) >= COMMIT_EVERY:
            writer.add_keypoints(batch, layer)
            _count_keypoints(summary, layer, len(batch))
            batch = {}
    writer.add_keypoints(batch, layer)
    _count_keypoints(summary, layer, len(batch))
    progress.close()


def _count_keypoints(summary: UpdateSummary, layer: str, count: int) -> None:
    if layer == "details":
        summary.detail_keypoints_added += count
    else:
        summary.keypoints_added += count


def _index_files_on(engine, index: CollectionIndex, writer: IndexWriter, to_index: list, summary: UpdateSummary,
                    runtime: str, show_progress: bool, keypointer=None, repairing: set[str] = frozenset()) -> None:
    staging = index.path / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # what killed runs' tasks left; we hold the writer's lock
    staging.mkdir()
    known = {p for (p,) in index.db.execute("SELECT path FROM images")}
    chunks = [to_index[k:k + TASK_IMAGES] for k in range(0, len(to_index), TASK_IMAGES)]
    progress = tqdm(total=len(to_index), unit="img", desc="indexing", disable=not show_progress)
    try:
        keypoints = None if keypointer is None else (keypointer.name, keypointer.conf)
        for chunk, staged in engine.stage_features(index, chunks, staging, runtime, keypoints):
            for message in staged.unreadable:
                progress.write(f"warning: skipped {message[3]}", file=sys.stderr)
            # Damaged features that cannot be made again: the image goes (adopt records it unreadable).
            writer.remove([message[0] for message in staged.unreadable if message[0] in repairing])
            writer.adopt(staged)
            for image in staged.images:
                summary.repaired += image.path in repairing
                summary.updated += image.path in known and image.path not in repairing
                summary.added += image.path not in known
                known.add(image.path)
            progress.update(len(chunk))
    finally:
        progress.close()
        shutil.rmtree(staging, ignore_errors=True)


def stage_features(root: Path, size: int, extractor, items: list, staging: Path, keypointer=None) -> StagedShard:
    """An indexing task's work, on a cluster worker: the features of ``items`` (``(path relative to
    root, bytes, mtime_ns, sha1 or None)``) written to a new file in ``staging``, and their rows (with
    their keypoints, given a ``keypointer``).

    The file gets a fresh name for every attempt and appears complete or not at all (written under a
    temporary name, flushed, renamed), so a retried task never meets a half-written one."""
    images, unreadable, blocks, offset = [], [], [], 0

    for (rel, nbytes, mtime_ns, _), loaded in prefetched(lambda item: decoded(root / item[0], size, keypointer, item[3]),
                                                         items):
        if isinstance(loaded, ImageError):
            unreadable.append((rel, nbytes, mtime_ns, str(loaded)))
            continue
        tensor, image_size, small, sha1 = loaded
        found = keypoint_row(keypointer.extract(small, image_size)) if keypointer is not None else None
        feats = extractor(tensor)[0].numpy()
        # As IndexWriter.add: descriptors from the float32 features, the block as float16.
        descriptors = regional_descriptors(feats).astype(np.float16).tobytes()
        block = np.ascontiguousarray(feats, dtype=np.float16)
        images.append(StagedImage(rel, nbytes, mtime_ns, sha1, image_size, feats.shape[1:], offset, descriptors, found,
                                  shards.checksum(block)))
        blocks.append(block)
        offset += block.nbytes
    if not images:
        return StagedShard(None, [], unreadable)
    name = uuid.uuid4().hex
    partial, final = staging / f"{name}.part", staging / f"{name}.f16"
    with open(partial, "wb") as f:
        for block in blocks:
            f.write(block.tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, final)
    return StagedShard(final, images, unreadable)


def _commit(writer: IndexWriter, batch: list[IndexEntry], known: set, summary: UpdateSummary,
            repairing: set[str] = frozenset()) -> None:
    if not batch:
        return
    writer.add(batch)
    for entry in batch:
        if entry.path in repairing:
            summary.repaired += 1
        elif entry.path in known:
            summary.updated += 1
        else:
            summary.added += 1
            known.add(entry.path)


def file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
