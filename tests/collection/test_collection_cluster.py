"""Collections on a Dask cluster (issue 26): the same index rows, discovery clusters and masks as one
process; a worker killed mid-run loses and duplicates nothing; no Dask without the options; bad
scheduler addresses refused in one line before any work.

The data: a few MSRC images of two groups (../shared/data; skipped without it). The cluster: a
LocalCluster of 2 worker processes on 127.0.0.1. Workers run torch on 1 thread, this process on its
default, so floats may differ in their last bits: features and descriptors are compared with a
float16 tolerance, clusters and masks exactly (they went through thresholds with margin to spare).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

MSRC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eval" / "msrc_coseg"
GROUPS = {"cow": 5, "plane": 5}
SIZE = 224

needs_msrc = pytest.mark.skipif(not (MSRC / "images").is_dir(), reason="needs ../shared/data/eval/msrc_coseg")


def copy_groups(root: Path) -> Path:
    """``root/images/<group>/`` and ``root/groundtruth/<group>/`` holding the first images of GROUPS."""
    for group, count in GROUPS.items():
        for kind in ("images", "groundtruth"):
            (root / kind / group).mkdir(parents=True)
        for path in sorted((MSRC / "images" / group).glob("*.png"))[:count]:
            shutil.copy(path, root / "images" / group / path.name)
            shutil.copy(MSRC / "groundtruth" / group / path.name, root / "groundtruth" / group / path.name)
    return root


def rows(index_dir: Path) -> list[tuple]:
    """The index's rows without where the features lie (shard, offset): ids, paths, signatures, sizes."""
    with sqlite3.connect(index_dir / "index.sqlite") as db:
        return db.execute("SELECT id, path, bytes, mtime_ns, sha1, width, height, grid_h, grid_w FROM images "
                          "ORDER BY id").fetchall()


def assert_same_index(single: Path, distributed: Path) -> None:
    from segswap.collection.index import CollectionIndex

    assert rows(single) == rows(distributed)
    with CollectionIndex(single) as a, CollectionIndex(distributed) as b:
        for image in a.images():
            np.testing.assert_allclose(a.features(image.id), b.features(image.id), atol=2e-3)
        (ids_a, desc_a), (ids_b, desc_b) = a.regional_descriptors(), b.regional_descriptors()
        assert ids_a == ids_b
        for x, y in zip(desc_a, desc_b):
            np.testing.assert_allclose(x, y, atol=2e-3)
    leftovers = list((distributed / "staging").glob("*")) if (distributed / "staging").exists() else []
    assert not leftovers


def clusters(found) -> list[list[str]]:
    return [sorted(m.image.path.name for m in c.images) for c in found.clusters]


@pytest.fixture(scope="module")
def engine():
    from segswap.cluster.engine import open_engine

    with open_engine(workers=2) as opened:
        yield opened


@needs_msrc
def test_index_discover_and_cosegment_give_the_single_process_answers(tmp_path, engine):
    import segswap
    from segswap.collection.cosegment import cosegment_folder
    from segswap.collection.discover import discover
    from segswap.collection.update import update_index

    root = copy_groups(tmp_path / "msrc")
    single, _ = update_index(root / "images", tmp_path / "single", size=SIZE, show_progress=False)
    spread, summary = update_index(root / "images", tmp_path / "spread", size=SIZE, show_progress=False, engine=engine)
    assert summary.added == sum(GROUPS.values()) and engine.workers == 2
    assert_same_index(tmp_path / "single", tmp_path / "spread")

    matcher = segswap.load("correlation", size=SIZE, backbone=single.backbone)
    here = discover(single, matcher, top_k=3, show_progress=False)
    there = discover(spread, matcher, top_k=3, show_progress=False, engine=engine)
    assert (here.pairs, here.nodes, here.edges) == (there.pairs, there.nodes, there.edges)
    assert clusters(here) == clusters(there) and here.clusters
    np.testing.assert_allclose([c.strength for c in here.clusters], [c.strength for c in there.clusters], rtol=1e-4)

    a = cosegment_folder(root, tmp_path / "masks-here", matcher, top_k=3, method="segswap", show_progress=False)
    b = cosegment_folder(root, tmp_path / "masks-there", matcher, top_k=3, method="segswap", show_progress=False,
                         engine=engine)
    assert a.groups.keys() == b.groups.keys()
    for group in a.groups:
        assert a.groups[group]["pairs"] == b.groups[group]["pairs"] and a.groups[group]["nodes"] == b.groups[group]["nodes"]
        for mask_a, mask_b in zip(a.groups[group]["masks"], b.groups[group]["masks"]):
            assert Path(mask_a).read_bytes() == Path(mask_b).read_bytes(), mask_a


def test_verified_regions_on_the_cluster_are_the_single_process_patterns(tmp_path, engine, kit):
    """Issue 37: the Dask path gives the same patterns (the regions design judges each pair as a worker's
    prediction arrives)."""
    import segswap
    from segswap.collection.discover import discovery_json, run_discovery
    from segswap.collection.update import update_index

    folder = tmp_path / "images"
    kit.planted_group(folder / "copies", 4, seed=3)
    for k in range(2):
        kit.planted_group(folder / f"other{k}", 1, seed=20 + k, object_seed=7000 + k, pattern="plain")
    single, _ = update_index(folder, tmp_path / "single", size=SIZE, show_progress=False)
    spread, _ = update_index(folder, tmp_path / "spread", size=SIZE, show_progress=False, engine=engine)
    if single.keypoint_settings is None:
        pytest.skip("keypoint wheels not installed")
    matcher = segswap.load("correlation", size=SIZE, backbone=single.backbone)
    here = run_discovery(single, matcher, design="regions", top_k=3, show_progress=False)
    there = run_discovery(spread, matcher, design="regions", top_k=3, show_progress=False, engine=engine)
    assert here.patterns and (here.pairs, here.edges) == (there.pairs, there.edges)
    strip = lambda found: [(p["kind"], [(Path(m["path"]).relative_to(folder).as_posix(), m["box"]) for m in p["images"]])
                           for p in discovery_json(found)["patterns"]]
    assert strip(here) == strip(there)
    assert any(all(path.startswith("copies/") for path, _ in images) for _, images in strip(here))


class KillOnce:
    """A worker plugin that kills its worker's process right after the second task of each kind
    (index, pairs) has computed its result and before the scheduler hears of it: the scheduler runs
    the task again on another worker. A marker file per kind makes it happen once in the cluster."""

    name = "kill-once"

    def __init__(self, folder: str):
        self.folder = folder

    def setup(self, worker):
        self.seen = {}

    def transition(self, key, start, finish, *args, **kwargs):
        if start != "executing" or finish != "memory":
            return
        kind = next((k for k in ("segswap-index", "segswap-pairs") if str(key).startswith(k)), None)
        if kind is None:
            return
        self.seen[kind] = self.seen.get(kind, 0) + 1
        if self.seen[kind] == 2:
            try:
                os.close(os.open(os.path.join(self.folder, kind), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)


@needs_msrc
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    import cloudpickle
    from distributed import WorkerPlugin

    import segswap
    from segswap.cluster import engine as cluster_engine
    from segswap.collection import update
    from segswap.collection.discover import discover
    from segswap.collection.update import update_index

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import test modules
    monkeypatch.setattr(update, "TASK_IMAGES", 2)
    monkeypatch.setattr(cluster_engine, "PAIRS_PER_TASK", 1)
    root = copy_groups(tmp_path / "msrc")
    markers = tmp_path / "killed"
    markers.mkdir()
    single, _ = update_index(root / "images", tmp_path / "single", size=SIZE, show_progress=False)
    matcher = segswap.load("correlation", size=SIZE, backbone=single.backbone)
    with cluster_engine.open_engine(workers=2) as engine:
        engine.client.register_plugin(type("KillOncePlugin", (KillOnce, WorkerPlugin), {})(str(markers)))
        spread, summary = update_index(root / "images", tmp_path / "spread", size=SIZE, show_progress=False,
                                       engine=engine)
        there = discover(spread, matcher, top_k=3, show_progress=False, engine=engine)
    assert sorted(p.name for p in markers.iterdir()) == ["segswap-index", "segswap-pairs"]  # a worker died twice
    assert summary.added == sum(GROUPS.values())
    assert_same_index(tmp_path / "single", tmp_path / "spread")
    here = discover(single, matcher, top_k=3, show_progress=False)
    assert clusters(here) == clusters(there) and (here.pairs, here.nodes) == (there.pairs, there.nodes)


def test_more_local_workers_than_cores_are_capped_with_a_warning(capsys):
    """Item 5 of issue 36: `discover --workers 48` on 2 cores was still running after 300 s (2 workers: 25 s)."""
    from segswap.cluster.engine import open_engine

    cores = len(os.sched_getaffinity(0))
    with open_engine(workers=3 * cores) as opened:
        assert opened.workers == cores
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"warning: --workers {3 * cores}: this machine has {cores} cores"), warning


def _environment(names):
    return {name: os.environ.get(name) for name in names}


def test_local_workers_start_without_dasks_malloc_trim_threshold(engine):
    """With Dask's MALLOC_TRIM_THRESHOLD_ (64 kB) the pair model ran 1.5× slower on a worker than in a plain
    process (lab/performance.md); the rest of Dask's worker environment (one BLAS/OpenMP thread) stays."""
    import dask.config

    names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")
    seen = engine.client.run(_environment, names)
    assert len(seen) == 2
    for environment in seen.values():
        assert environment == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}
    # and the setting is the local cluster's own: Dask's configuration outside it is left as it was
    assert dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"] == 65536


def test_a_threshold_left_in_this_process_does_not_reach_new_local_workers(monkeypatch):
    """Dask's nannies write their pre-spawn environment into the spawning process's own: a cluster started
    earlier with Dask's defaults leaves MALLOC_TRIM_THRESHOLD_ there, and later workers would inherit it."""
    from segswap.cluster.engine import open_engine

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with open_engine(workers=1, show_progress=False) as opened:
        seen = opened.client.run(_environment, ("MALLOC_TRIM_THRESHOLD_",))
    assert list(seen.values()) == [{"MALLOC_TRIM_THRESHOLD_": None}]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # this process's own environment is given back


def test_without_the_options_dask_is_never_imported(tmp_path, kit):
    import subprocess

    kit.planted_repeats(tmp_path / "images", seed=0, copies=2, plain=1)
    code = ("import sys\nfrom segswap.cli.app import app\n"
            f"for args in ([r'{tmp_path / 'images'}', '--index', r'{tmp_path / 'idx'}', '--size', '{SIZE}'],\n"
            f"             ['--index', r'{tmp_path / 'idx'}', '--model', 'correlation']):\n"
            "    app(['index' if len(args) == 5 else 'discover', *args], standalone_mode=False)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("options, message", [
    (["--scheduler", "localhost:8786"], "expected tcp|tls://HOST:PORT"),
    (["--scheduler", "tcp://127.0.0.1"], "expected tcp|tls://HOST:PORT"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "exclude each other"),
    (["--workers", "0"], "at least 1"),
    (["--scheduler", "tcp://127.0.0.1:9"], "no Dask scheduler answered"),
])
def test_bad_cluster_options_are_one_line_and_nothing_is_written(tmp_path, kit, run_cli, options, message):
    kit.planted_repeats(tmp_path / "images", seed=0, copies=2, plain=1)
    done = run_cli("index", tmp_path / "images", "--index", tmp_path / "idx", *options, timeout=120)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "idx").exists()


def test_cosegment_on_a_remote_scheduler_needs_a_shared_scratch_folder_and_no_index(tmp_path, run_cli):
    (tmp_path / "images").mkdir()
    done = run_cli("cosegment", tmp_path / "images", "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2 and "--scratch" in done.stderr
    done = run_cli("cosegment", tmp_path / "images", "--out", tmp_path / "out", "--index", tmp_path / "images",
                   "--workers", "2")
    assert done.returncode == 2 and "do not combine yet" in done.stderr and not (tmp_path / "out").exists()


@needs_msrc
def test_eval_coseg_and_cosegment_commands_with_local_workers_score_as_one_process(tmp_path, run_cli):
    import json

    root = copy_groups(tmp_path / "msrc")
    scores = {}
    for label, options in (("here", []), ("there", ["--workers", "2"])):
        done = run_cli("eval", "coseg", root, "--method", "correlation", "--size", SIZE, "--top-k", 3,
                       "--json", tmp_path / f"{label}.json", *options)
        assert done.returncode == 0, done.stderr
        scores[label] = json.loads((tmp_path / f"{label}.json").read_text())["groups"]
    assert scores["here"] == scores["there"]
    done = run_cli("cosegment", root, "--out", tmp_path / "masks", "--model", "correlation", "--size", SIZE,
                   "--method", "segswap", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "masks").rglob("*.png"))) == sum(GROUPS.values())
    done = run_cli("eval", "coseg", root, "--method", "centre-box", "--workers", "2")
    assert done.returncode == 2 and "does not run on a cluster" in done.stderr
