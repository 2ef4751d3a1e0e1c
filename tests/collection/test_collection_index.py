import os
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from segswap.collection import index as index_module
from segswap.collection import update as update_module
from segswap.collection.index import CollectionIndex, IndexWriter
from segswap.collection.shards import shard_numbers, total_bytes
from segswap.collection.update import update_index
from segswap.errors import SegswapError


SIZE = 224


@pytest.fixture
def make_folder(kit):
    def make(folder, n, seed=0):
        rng = np.random.default_rng(seed)
        return [kit.save(folder / f"{i:03d}.png", kit.clutter(rng, 120 + 16 * (i % 3), 176)) for i in range(n)]
    return make


def rows(index):
    return {p: s for p, s in index.db.execute("SELECT path, sha1 FROM images")}


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
            for entry in entries:
                self._shards.append(entry.features)
            self._shards.flush()
            raise KeyboardInterrupt
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
