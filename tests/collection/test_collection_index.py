import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from segswap.collection import index as index_module
from segswap.collection import update as update_module
from segswap.collection.descriptor import DescriptorIndex
from segswap.collection.index import CollectionIndex, IndexWriter
from segswap.collection.shards import shard_numbers, total_bytes
from segswap.collection.update import update_index
from segswap.errors import IndexDamagedError, SegswapError


SIZE = 224


@pytest.fixture
def make_folder(kit):
    def make(folder, n, seed=0):
        rng = np.random.default_rng(seed)
        return [kit.save(folder / f"{i:03d}.png", kit.clutter(rng, 120 + 16 * (i % 3), 176)) for i in range(n)]
    return make


def rows(index):
    return {p: s for p, s in index.db.execute("SELECT path, sha1 FROM images")}


def append_then_die(writer, entries):
    """What a process killed inside :meth:`IndexWriter.add` leaves: the features appended, no row committed."""
    for entry in entries:
        writer._shards.append(entry.features)
    writer._shards.flush()
    raise KeyboardInterrupt


def test_first_run_indexes_everything_and_second_run_nothing(tmp_path, make_folder):
    make_folder(tmp_path / "photos", 5)
    (tmp_path / "photos" / "notes.txt").write_text("not an image, not listed")
    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (5, 0, 0, 0)
    assert len(idx) == 5 and len(idx.descriptor_index()) > 5  # several windows per image
    image = idx.images()[0]
    feats = idx.features(image.id)
    assert feats.dtype == np.float16 and feats.shape == (idx.channels, *image.grid)
    assert np.allclose(np.linalg.norm(feats.astype(np.float32), axis=0), 1, atol=0.01)  # L2-normalised cells
    again = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)[1]
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 5)


def test_new_changed_touched_deleted_and_unreadable_files_are_detected(tmp_path, make_folder, kit):
    paths = make_folder(tmp_path / "photos", 5)
    idx, _ = update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False)
    before = rows(idx)
    generation = idx.generation
    idx.close()

    kit.save(paths[0], kit.clutter(np.random.default_rng(99), 120, 176))  # new content
    os.utime(paths[1], ns=(time.time_ns(), time.time_ns() + 10**9))  # new mtime, same content
    paths[2].unlink()
    make_folder(tmp_path / "photos" / "more", 2, seed=5)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")

    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged, summary.unreadable) == (2, 1, 1, 3, 1)
    after = rows(idx)
    assert "002.png" not in after and {"more/000.png", "more/001.png"} <= set(after)
    assert after["000.png"] != before["000.png"] and after["001.png"] == before["001.png"]
    assert idx.generation > generation
    # The descriptor index follows: the deleted image is never shortlisted, the new ones are.
    ids, regional = idx.regional_descriptors()
    listed = {i for hits in idx.descriptor_index().search(regional, 10) for i, _ in hits}
    assert listed == set(ids)
    idx.close()
    # An unreadable file is not retried until it changes.
    third = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)[1]
    assert (third.added, third.updated, third.unchanged, third.unreadable) == (0, 0, 6, 1)


def test_deleting_most_images_compacts_the_shards(tmp_path, make_folder):
    paths = make_folder(tmp_path / "photos", 6)
    update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False)[0].close()
    for path in paths[:4]:
        path.unlink()
    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert summary.compacted and summary.removed == 4
    live = sum(2 * idx.channels * im.grid[0] * im.grid[1] for im in idx.images())
    assert total_bytes(idx.path) == live
    for image in idx.images():  # features survived the move
        assert np.isfinite(idx.features(image.id).astype(np.float32)).all()


def test_a_crash_between_writing_features_and_committing_is_recovered(tmp_path, monkeypatch, make_folder):
    make_folder(tmp_path / "photos", 9)
    monkeypatch.setattr(update_module, "COMMIT_EVERY", 3)
    real_add = IndexWriter.add
    calls = []

    def add_then_die(self, entries):
        calls.append(len(entries))
        if len(calls) == 2:  # the process dies after appending features, before the rows commit
            append_then_die(self, entries)
        real_add(self, entries)

    monkeypatch.setattr(IndexWriter, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False)
    monkeypatch.setattr(IndexWriter, "add", real_add)
    with sqlite3.connect(tmp_path / "idx" / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 3  # the first batch survived

    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert (summary.added, summary.unchanged) == (6, 3) and len(idx) == 9
    live = sum(2 * idx.channels * im.grid[0] * im.grid[1] for im in idx.images())
    assert total_bytes(idx.path) == live  # the orphaned features were cut off
    fresh, _ = update_index(tmp_path / "photos", tmp_path / "fresh", size=SIZE, show_progress=False)
    by_path = {im.path.name: im.id for im in fresh.images()}
    for image in idx.images():
        assert np.array_equal(idx.features(image.id), fresh.features(by_path[image.path.name]))


def test_a_killed_index_process_resumes(tmp_path, make_folder, run_cli):
    n = 200  # enough that a quiet machine cannot index all before the first poll sees a batch
    make_folder(tmp_path / "photos", n)
    command = run_cli.command("index", tmp_path / "photos", "--index", tmp_path / "idx", "--size", SIZE)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = tmp_path / "idx" / "index.sqlite"
    committed = 0
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None and committed == 0:
        time.sleep(0.05)
        if database.exists():
            try:
                with sqlite3.connect(database) as db:
                    committed = db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            except sqlite3.OperationalError:  # the table is not created yet
                pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < committed < n, "the process should be killed after its first batch and before the end"
    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert len(idx) == n and summary.added == n - summary.unchanged
    live = sum(2 * idx.channels * im.grid[0] * im.grid[1] for im in idx.images())
    assert total_bytes(idx.path) == live


def test_one_writer_at_a_time_and_settings_are_kept(tmp_path, make_folder):
    make_folder(tmp_path / "photos", 2)
    idx, _ = update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False)
    with IndexWriter(idx):
        with pytest.raises(SegswapError, match="another process"):
            IndexWriter(CollectionIndex(tmp_path / "idx"))
    with pytest.raises(SegswapError, match="built with backbone"):
        update_index(tmp_path / "photos", tmp_path / "idx", size=320, show_progress=False)
    with pytest.raises(SegswapError, match="indexes"):
        update_index(tmp_path, tmp_path / "idx", show_progress=False)
    with pytest.raises(SegswapError, match="not a segswap index"):
        CollectionIndex(tmp_path / "photos")
    with pytest.raises(SegswapError, match="multiple of 16"):
        update_index(tmp_path / "photos", tmp_path / "other", size=500, show_progress=False)
    assert shard_numbers(idx.path) == [0]
    assert index_module.FORMAT_VERSION == int(idx.db.execute("SELECT value FROM settings WHERE key='format'").fetchone()[0])


def test_symlinked_subfolders_are_indexed_and_warnings_go_to_stderr(tmp_path, make_folder, run_cli):
    """Items 9 and 21 of issue 21: `index` took 2 of 6 images when 4 sat in a symlinked sub-folder, and
    printed its skipped-file warnings on stdout."""
    make_folder(tmp_path / "photos", 2)
    make_folder(tmp_path / "elsewhere", 4, seed=1)
    os.symlink(tmp_path / "elsewhere", tmp_path / "photos" / "linked")
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    result = run_cli("index", tmp_path / "photos", "--index", tmp_path / "idx", "--size", SIZE)
    assert result.returncode == 0, result.stderr
    assert len(CollectionIndex(tmp_path / "idx")) == 6
    assert "warning: skipped" in result.stderr and "warning:" not in result.stdout


def test_a_reader_keeps_the_state_it_opened_while_a_writer_reindexes(tmp_path, make_folder, monkeypatch):
    """Item 16 of issue 21: `search` during an `index` that re-indexed changed files crashed with
    "cannot reshape array of size 0" in shards.py."""
    paths = make_folder(tmp_path / "photos", 6)
    update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False)
    reader = CollectionIndex(tmp_path / "idx")
    before = {image.path.name: np.array(reader.features(image.id)) for image in reader.images()}
    make_folder(tmp_path / "photos", 6, seed=5)  # every file changes...
    paths[0].unlink()
    monkeypatch.setattr(update_module, "COMPACT_ABOVE", 0.0)  # ...and the shards are compacted away
    _, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert summary.compacted and summary.updated == 5
    assert {image.path.name: np.array(reader.features(image.id)) for image in reader.images()}.keys() == before.keys()
    for image in reader.images():
        assert np.array_equal(reader.features(image.id), before[image.path.name])
    reader.close()
    assert len(CollectionIndex(tmp_path / "idx")) == 5


def _stored(idx):
    return {p: (i, s, sh, off, bytes(d)) for i, p, s, sh, off, d in
            idx.db.execute("SELECT id, path, sha1, shard, offset, descriptors FROM images")}


@pytest.mark.skipif(not update_module.is_installed("xfeat"), reason="keypoint wheels not installed")
def test_keypoints_are_stored_and_an_index_without_them_is_upgraded_keeping_every_row(tmp_path, make_folder, kit):
    paths = make_folder(tmp_path / "photos", 4)
    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", size=SIZE, show_progress=False, keypoints=False)
    assert idx.keypoint_settings is None and len(idx.without_keypoints()) == 4
    assert all(idx.keypoints(image.id) is None for image in idx.images())
    before, features = _stored(idx), {image.id: np.array(idx.features(image.id)) for image in idx.images()}
    idx.close()

    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert summary.keypoints_added == 4 and "keypoints added to 4 images" in summary.line()
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (0, 0, 0, 4)
    assert _stored(idx) == before and idx.without_keypoints() == []  # every row as it was, keypoints beside
    assert all(np.array_equal(idx.features(i), f) for i, f in features.items())
    assert idx.keypoint_settings["matcher"] == "xfeat" and idx.keypoint_settings["conf"]["max_keypoints"] == 1024
    for image in idx.images():
        found = idx.keypoints(image.id)
        w, h = image.size
        assert 50 <= len(found["keypoints"]) <= 1024 and found["descriptors"].shape == (len(found["keypoints"]), 64)
        assert found["keypoints"][:, 0].max() < w and found["keypoints"][:, 1].max() < h  # the image's own pixels
        assert np.allclose(np.linalg.norm(found["descriptors"], axis=1), 1, atol=0.01)
    # the same as extracting from the file now (the index's settings, its image decoded once)
    from segswap.keypoints import get_matcher

    fresh = get_matcher(idx.keypoint_settings["matcher"], **idx.keypoint_settings["conf"]).extract(paths[0])
    stored = idx.keypoints(idx.db.execute("SELECT id FROM images WHERE path = '000.png'").fetchone()[0])
    assert np.allclose(stored["keypoints"], fresh["keypoints"], atol=1e-3)
    assert np.allclose(stored["descriptors"], fresh["descriptors"], atol=2e-3)
    idx.close()

    # a changed image gets new keypoints, a deleted one loses its own
    kit.save(paths[0], kit.clutter(np.random.default_rng(99), 120, 176))
    paths[1].unlink()
    idx, summary = update_index(tmp_path / "photos", tmp_path / "idx", show_progress=False)
    assert (summary.updated, summary.removed, summary.keypoints_added) == (1, 1, 0)
    changed = idx.keypoints(idx.db.execute("SELECT id FROM images WHERE path = '000.png'").fetchone()[0])
    assert not np.array_equal(changed["keypoints"][:10], stored["keypoints"][:10])
    assert idx.db.execute("SELECT COUNT(*) FROM keypoints").fetchone()[0] == len(idx) == 3
    idx.close()


# -- damage (issue 36, item 2): each kind is found, named in one line with the command that repairs it, and
# repaired by `segswap index`; never a traceback, never counted "unchanged".

def _damage(kind: str, idx: Path) -> None:
    shard = idx / "features" / "00000.f16"
    (faiss_file,) = idx.glob("descriptors-*.faiss")
    database = idx / "index.sqlite"
    if kind == "truncated feature shard":
        os.truncate(shard, shard.stat().st_size // 2)
    elif kind == "zeroed feature block":
        with open(shard, "r+b") as f:
            f.write(bytes(4096))
    elif kind == "deleted feature shard":
        shard.unlink()
    elif kind == "truncated FAISS file":
        os.truncate(faiss_file, faiss_file.stat().st_size // 2)
    elif kind == "garbage FAISS file":
        faiss_file.write_bytes(np.random.default_rng(0).bytes(faiss_file.stat().st_size))
    elif kind == "truncated SQLite database":
        os.truncate(database, database.stat().st_size // 2)
    elif kind == "garbage SQLite database":
        database.write_bytes(np.random.default_rng(0).bytes(database.stat().st_size))
    else:
        raise ValueError(kind)


@pytest.fixture(scope="module")
def intact(tmp_path_factory, kit):
    """A folder of 6 images and its index (keypoints where the wheels are installed), for copies to damage."""
    root = tmp_path_factory.mktemp("intact")
    rng = np.random.default_rng(0)
    for i in range(6):
        kit.save(root / "photos" / f"{i:03d}.png", kit.clutter(rng, 120 + 16 * (i % 3), 176))
    update_index(root / "photos", root / "idx", size=SIZE, show_progress=False)[0].close()
    return (root / "photos").resolve(), root / "idx"


def _blocks_damaged(kind: str, idx: Path) -> int:
    """How many images' feature blocks ``kind`` damages in the intact index ``idx``."""
    with sqlite3.connect(idx / "index.sqlite") as db:
        ends = [offset + 2 * channels * gh * gw for offset, gh, gw, channels in db.execute(
            "SELECT offset, grid_h, grid_w, (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'channels') "
            "FROM images")]
    size = (idx / "features" / "00000.f16").stat().st_size
    return {"truncated feature shard": sum(end > size // 2 for end in ends), "zeroed feature block": 1,
            "deleted feature shard": len(ends)}.get(kind, 0)


def _one_line(result) -> str:
    """The one error line of a command that failed (after the lines of the steps it finished)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


@pytest.mark.parametrize("kind", ["truncated feature shard", "zeroed feature block", "deleted feature shard",
                                  "truncated FAISS file", "garbage FAISS file", "truncated SQLite database",
                                  "garbage SQLite database"])
def test_a_damaged_index_is_named_in_one_line_and_repaired_by_segswap_index(kind, intact, tmp_path, run_cli):
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    damaged = _blocks_damaged(kind, intact_idx)
    _damage(kind, idx)
    query = photos / "000.png"
    search = ("search", query, "--index", idx, "--model", "correlation")
    discover = ("discover", "--index", idx, "--model", "correlation")
    if "FAISS" in kind:  # derived data: rebuilt from the rows, and written again
        for command in (search, discover):
            result = run_cli(*command)
            assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        with CollectionIndex(idx) as index:
            assert len(DescriptorIndex.load(next(idx.glob("descriptors-*.faiss")))) == len(index.descriptor_index()) > 6
        return
    part = "index.sqlite" if "SQLite" in kind else "features/00000.f16"
    repair = f"`segswap index {photos} --index {idx}`"
    for command in (search, discover):
        line = _one_line(run_cli(*command))
        assert "damaged" in line and part in line and repair in line, line

    result = run_cli("index", photos, "--index", idx)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "damaged" in result.stderr and part in result.stderr, result.stderr
    if "SQLite" in kind:  # the database set aside, the folder indexed afresh
        assert "6 added" in result.stdout and "0 unchanged" in result.stdout, result.stdout
        assert (idx / "index.sqlite.damaged").is_file()
    else:
        assert damaged >= 1 and f"{damaged} repaired (damaged features)" in result.stdout, result.stdout
        assert f"{6 - damaged} unchanged" in result.stdout and "0 added, 0 updated" in result.stdout, result.stdout
    result = run_cli(*search)
    assert result.returncode == 0 and "1. " in result.stdout and "Traceback" not in result.stderr, result.stderr
    with CollectionIndex(idx) as index, CollectionIndex(intact_idx) as before:
        assert len(index) == 6 and index.without_keypoints() == []
        by_path = {image.path: image.id for image in before.images()}
        for image in index.images():  # every block whole again, and as it was
            np.testing.assert_allclose(index.features(image.id), before.features(by_path[image.path]), atol=2e-3)
    again = update_index(photos, idx, show_progress=False)[1]
    assert (again.added, again.updated, again.unchanged, again.repaired) == (0, 0, 6, 0)


def test_a_damaged_page_met_by_a_later_query_is_named_and_segswap_index_rebuilds_the_index(intact, tmp_path):
    """The database opens, and a query meets the damage: one line naming index.sqlite, whichever query it is."""
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    db = sqlite3.connect(idx / "index.sqlite")
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    (root_page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'keypoints'").fetchone()
    db.close()
    with open(idx / "index.sqlite", "r+b") as f:
        f.seek((root_page - 1) * page_size)
        f.write(np.random.default_rng(0).bytes(page_size))
    with CollectionIndex(idx) as index:
        assert len(index) == 6
        with pytest.raises(IndexDamagedError, match=rf"index.sqlite is damaged .*`segswap index {photos} --index {idx}`"):
            index.without_keypoints()
    index, summary = update_index(photos, idx, show_progress=False, keypoints=False)
    assert (summary.added, summary.unchanged) == (6, 0) and "damaged database set aside" in summary.line()
    assert len(index) == 6 and (idx / "index.sqlite.damaged").is_file()
    index.close()


def _as_made_before_checksums(idx: Path) -> None:
    """Give ``idx`` the images table an index made before checksums were recorded has."""
    with sqlite3.connect(idx / "index.sqlite") as db:
        db.executescript("""ALTER TABLE images RENAME TO current;
            CREATE TABLE images (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, bytes INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL, sha1 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
                grid_h INTEGER NOT NULL, grid_w INTEGER NOT NULL, shard INTEGER NOT NULL, offset INTEGER NOT NULL,
                descriptors BLOB NOT NULL);
            INSERT INTO images SELECT id, path, bytes, mtime_ns, sha1, width, height, grid_h, grid_w, shard, offset,
                descriptors FROM current;
            DROP TABLE current;""")


def test_an_index_without_checksums_reads_as_before_and_gets_them_at_its_next_update(intact, tmp_path):
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    _as_made_before_checksums(idx)
    with CollectionIndex(idx) as index:
        assert all(index.features(image.id).shape == (index.channels, *image.grid) for image in index.images())
        first = index.images()[0]
        block_bytes = 2 * index.channels * first.grid[0] * first.grid[1]
    with open(idx / "features" / "00000.f16", "r+b") as f:  # without a checksum, a block of zeros is still found
        f.write(bytes(block_bytes))
    with CollectionIndex(idx) as index, pytest.raises(IndexDamagedError, match="00000.f16 holds only zeros"):
        index.features(first.id)
    index, summary = update_index(photos, idx, show_progress=False)
    assert (summary.unchanged, summary.repaired) == (5, 1)
    assert index.db.execute("SELECT COUNT(*) FROM images WHERE crc32 IS NULL").fetchone()[0] == 0
    (shard, offset) = index.db.execute("SELECT shard, offset FROM images WHERE path = '001.png'").fetchone()
    index.close()
    with open(idx / "features" / f"{shard:05d}.f16", "r+b") as f:  # part of a block: found by its checksum now
        f.seek(offset)
        f.write(bytes(4096))
    with CollectionIndex(idx) as index, pytest.raises(IndexDamagedError, match="001.png are damaged .*00000.f16 holds "
                                                                                "other bytes than were written there"):
        [index.features(image.id) for image in index.images()]
    summary = update_index(photos, idx, show_progress=False)[1]
    assert (summary.unchanged, summary.repaired) == (5, 1)


def test_segswap_index_rewrites_a_damaged_faiss_file_and_says_so(intact, tmp_path):
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    _damage("garbage FAISS file", idx)
    index, summary = update_index(photos, idx, show_progress=False)
    assert summary.unchanged == 6 and "descriptor file rebuilt (it was damaged)" in summary.line()
    assert len(DescriptorIndex.load(next(idx.glob("descriptors-*.faiss")))) == len(index.descriptor_index())
    index.close()


def test_feature_locations_for_cluster_workers_refuse_a_truncated_shard(intact, tmp_path):
    _, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    _damage("truncated feature shard", idx)
    with CollectionIndex(idx) as index, pytest.raises(IndexDamagedError, match="00000.f16 ends before"):
        index.feature_locations()


@pytest.mark.skipif(not update_module.is_installed("xfeat"), reason="keypoint wheels not installed")
def test_keypoints_of_the_wrong_length_count_as_missing_and_are_extracted_again(intact, tmp_path):
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    with sqlite3.connect(idx / "index.sqlite") as db:
        db.execute("UPDATE keypoints SET descriptors = substr(descriptors, 1, 1000) WHERE id = 1")
    with CollectionIndex(idx) as index:
        assert index.without_keypoints() == [(1, "000.png")]
    index, summary = update_index(photos, idx, show_progress=False)
    assert summary.keypoints_added == 1 and index.without_keypoints() == []
    index.close()


def test_descriptors_of_the_wrong_length_are_named_and_the_image_extracted_again(intact, tmp_path):
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    with sqlite3.connect(idx / "index.sqlite") as db:
        db.execute("UPDATE images SET descriptors = substr(descriptors, 1, 100) WHERE path = '002.png'")
    with CollectionIndex(idx) as index, pytest.raises(IndexDamagedError, match="the descriptors of 002.png are damaged"):
        index.regional_descriptors()
    index, summary = update_index(photos, idx, show_progress=False)
    assert (summary.unchanged, summary.repaired) == (5, 1) and len(index.regional_descriptors()[0]) == 6
    index.close()


def test_a_repair_killed_midway_is_finished_by_the_next_run(intact, tmp_path, monkeypatch):
    """Repaired blocks go at the end of the truncated shard, over the place of damaged ones not repaired yet:
    those stay marked damaged, even without a checksum to go by (an index made before checksums), and
    the next run finds them still to repair."""
    photos, intact_idx = intact
    idx = tmp_path / "idx"
    shutil.copytree(intact_idx, idx)
    _as_made_before_checksums(idx)
    shard = idx / "features" / "00000.f16"
    with CollectionIndex(idx) as index:
        ends = [offset + 2 * index.channels * gh * gw
                for offset, gh, gw in index.db.execute("SELECT offset, grid_h, grid_w FROM images")]
    cut = shard.stat().st_size // 2 + 10000  # inside a block: repaired blocks land across the places of others
    damaged = sum(end > cut for end in ends)
    os.truncate(shard, cut)
    monkeypatch.setattr(update_module, "COMMIT_EVERY", 1)
    real_add = IndexWriter.add

    def add_then_die(self, entries):
        if self.index.db.execute("SELECT COUNT(*) FROM images WHERE crc32 = -1").fetchone()[0] < damaged:
            append_then_die(self, entries)  # the second repair dies after appending its block, before its row commits
        real_add(self, entries)

    monkeypatch.setattr(IndexWriter, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        update_index(photos, idx, show_progress=False)
    monkeypatch.setattr(IndexWriter, "add", real_add)
    index, summary = update_index(photos, idx, show_progress=False)
    assert (summary.repaired, summary.unchanged) == (damaged - 1, 6 - damaged + 1)
    with CollectionIndex(intact_idx) as before:
        by_path = {image.path: image.id for image in before.images()}
        for image in index.images():
            np.testing.assert_allclose(index.features(image.id), before.features(by_path[image.path]), atol=2e-3)
    assert update_index(photos, idx, show_progress=False)[1].unchanged == 6
    index.close()
