"""A Dask cluster to run a collection command on: connected to, or started locally, for one command.

:func:`open_engine` yields a :class:`DaskEngine`; the collection functions take it as ``engine=`` and
hand it the expensive, independent work — backbone features (index, co-segmentation), the pair model
over image pairs (discover, co-segmentation) and the masks (GrabCut, the objectness prior). The graph,
the clustering and every write to the index or the output folder stay on the client.

Same answer: tasks rebuild the client's matcher from its load arguments; pair tasks take whole batches
of :func:`~segswap.collection.predictions.predict_pairs` (:func:`~segswap.collection.predictions.pair_chunks`);
results are put back in the order a single process produces them. The floats can still differ in
their last bits from a single process's where torch or onnxruntime uses another number of threads.

A worker that dies mid-task (killed, out of memory) has its tasks run again elsewhere by the
scheduler; a task's files appear complete under a fresh name per attempt and the client commits only
the attempt whose result it received, so nothing is lost or committed twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import dask.config
import numpy as np
from distributed import Client, KilledWorker, LocalCluster, WorkerPlugin, as_completed
from tqdm import tqdm

from ..collection.features import FolderFeatures
from ..collection.index import CollectionIndex, StagedShard
from ..collection.predictions import PAIR_BATCH, PairPrediction, PredictionSink, pair_chunks
from ..errors import ImageError, SegswapError
from . import tasks

#: Seconds to reach a scheduler, and then to see at least one worker.
CONNECT_SECONDS = 10
WORKER_SECONDS = 60
#: The glibc variable Dask sets for its workers and local clusters start without (:func:`worker_environment`).
TRIM_THRESHOLD = "MALLOC_TRIM_THRESHOLD_"
#: Pairs per task: whole batches of predict_pairs' PAIR_BATCH (≈1 MB of predictions back at 320 px).
PAIRS_PER_TASK = 64
#: Images per co-segmentation feature task.
FEATURE_TASK_IMAGES = 32


class ThreadLimit(WorkerPlugin):
    """Sets each worker's torch and onnxruntime threads once, before its first task, so that workers
    sharing a machine do not oversubscribe its cores."""

    name = "segswap-thread-limit"

    def __init__(self, threads: int):
        self.threads = threads

    def setup(self, worker):
        import torch

        from ..backbone.base import limit_threads

        torch.set_num_threads(self.threads)
        limit_threads(self.threads)


@contextlib.contextmanager
def open_engine(scheduler: str | None = None, workers: int | None = None, scratch: Path | None = None,
                show_progress: bool = True) -> Iterator["DaskEngine"]:
    """Connect to the scheduler at ``scheduler`` (tcp://HOST:PORT), or start ``workers`` local worker
    processes on 127.0.0.1; close (and stop) them on exit. Options are checked by
    :func:`segswap.cluster.engine_options.check_engine_options` first."""
    cluster = client = trim_threshold = None
    own_scratch = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix="segswap-scratch-")) if own_scratch else Path(scratch)
    try:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as err:
                raise SegswapError(f"--scheduler {scheduler}: no Dask scheduler answered "
                                   f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
            try:
                client.wait_for_workers(1, timeout=WORKER_SECONDS)
            except TimeoutError:
                raise SegswapError(f"--scheduler {scheduler}: no worker joined within {WORKER_SECONDS} s "
                                   "(start some with `dask worker`)") from None
        else:
            cores = available_cores()
            if workers > cores:
                # Workers are CPU-bound, each with a model in memory: more than the cores only compete
                # for them (48 on 2 cores were still starting after 300 s).
                print(f"warning: --workers {workers}: this machine has {cores} cores; starting {cores} workers",
                      file=sys.stderr, flush=True)
                workers = cores
            threads = max(1, cores // workers)
            # Dask's nannies write their pre-spawn environment into this process's own before each spawn, so an
            # earlier cluster (or the shell) can have left the variable here, and new workers would inherit it.
            trim_threshold = os.environ.pop(TRIM_THRESHOLD, None)
            with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environment()}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0", silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
            client.register_plugin(ThreadLimit(threads))
        scratch.mkdir(parents=True, exist_ok=True)
        yield DaskEngine(client, scratch)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        if trim_threshold is not None:
            os.environ[TRIM_THRESHOLD] = trim_threshold


def worker_environment() -> dict:
    """Dask's environment for new worker processes, without its ``MALLOC_TRIM_THRESHOLD_`` (64 kB by default):
    setting it turns off glibc's adaptive mmap threshold, so every tensor above 128 kB is mapped and unmapped
    again, page faults and all, and the pair model ran 1.5× slower on a worker than in a plain process
    (lab/performance.md, "The Dask path's overhead"). None unsets a variable in Dask's configuration."""
    return {**dask.config.get("distributed.nanny.pre-spawn-environ"), TRIM_THRESHOLD: None}


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity (which a container or `taskset` narrows), or
    the machine's count where the system has no affinity call."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class DaskEngine:
    """Runs a collection command's independent work as Dask tasks (see the module docstring)."""

    def __init__(self, client: Client, scratch: Path):
        self.client = client
        self.scratch = scratch

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    # -- index ------------------------------------------------------------------------------------
    def stage_features(self, index: CollectionIndex, chunks: list[list], staging: Path,
                       runtime: str, keypoints: tuple[str, dict] | None = None) -> Iterator[tuple[list, StagedShard]]:
        """``(chunk, staged shard)`` per chunk of files to index, in the chunks' order, as tasks finish;
        ``keypoints``: (matcher name, settings) of the keypoints to store, or None."""
        run = uuid.uuid4().hex[:8]
        futures = [self.client.submit(tasks.index_chunk, str(index.root), index.backbone, index.size, runtime, chunk,
                                      str(staging), keypoints, key=f"segswap-index-{run}-{n}", pure=False)
                   for n, chunk in enumerate(chunks)]
        yield from zip(chunks, self._in_order(futures))

    # -- pairs ------------------------------------------------------------------------------------
    def predict_pairs(self, matcher, locations: dict[int, tasks.FeatureLocation], pairs: Sequence[tuple[int, int]], *,
                      flip: bool = False, batch_size: int | None = None, show_progress: bool = True,
                      sink: PredictionSink | None = None) -> list[PairPrediction]:
        """As :func:`segswap.collection.predictions.predict_pairs` (``sink`` too: each task's predictions go to
        it as they arrive), on the workers; ``locations``: where each image's features lie in the shared
        folder."""
        arguments = _load_arguments(matcher)
        batch_size = batch_size or PAIR_BATCH  # the client's: the workers then run a single process's batches
        chunks = pair_chunks(lambda i: locations[i][2][1:], pairs, PAIRS_PER_TASK, batch_size)
        run = uuid.uuid4().hex[:8]
        futures = []
        for n, chunk in enumerate(chunks):
            chunk_pairs = [tuple(pairs[k]) for k in chunk]
            needed = {i: locations[i] for pair in chunk_pairs for i in pair}
            futures.append(self.client.submit(tasks.predict_chunk, arguments, needed, chunk_pairs, flip, batch_size,
                                              key=f"segswap-pairs-{run}-{n}", pure=False))
        results: list[PairPrediction | None] = [None] * len(pairs)
        progress = tqdm(total=len(pairs), unit="pair", desc="pairs", disable=not show_progress)
        for chunk, predictions in zip(chunks, self._in_order(futures)):
            for k, prediction in zip(chunk, predictions):
                if sink is not None:
                    sink(k, prediction)
                else:
                    results[k] = prediction
            progress.update(len(chunk))
        progress.close()
        return [] if sink is not None else results

    # -- co-segmentation features -----------------------------------------------------------------
    def extract_features(self, paths: Sequence[Path], matcher, *, skip_unreadable: bool,
                         show_progress: bool = True) -> FolderFeatures:
        """As :func:`segswap.collection.features.extract_features`, on the workers: the features stay in
        shard files in the scratch folder (read here through memory maps, only if needed)."""
        arguments = _load_arguments(matcher)
        folder = self.scratch / uuid.uuid4().hex
        folder.mkdir()
        paths = [Path(p) for p in paths]
        chunks = [paths[k:k + FEATURE_TASK_IMAGES] for k in range(0, len(paths), FEATURE_TASK_IMAGES)]
        run = folder.name[:8]
        futures = [self.client.submit(tasks.feature_chunk, arguments, chunk, str(folder), key=f"segswap-features-{run}-{n}",
                                      pure=False) for n, chunk in enumerate(chunks)]
        out = FolderFeatures(locations=[], descriptors=[])
        maps: dict[str, np.memmap] = {}
        progress = tqdm(total=len(paths), unit="img", desc="features", disable=not show_progress)
        for chunk, done in zip(chunks, self._in_order(futures)):
            progress.update(len(chunk))
            if done.skipped and not skip_unreadable:
                self.client.cancel(futures)
                raise ImageError(done.skipped[0])
            for message in done.skipped:
                progress.write(f"warning: skipped {message}", file=sys.stderr)
            out.skipped += done.skipped
            out.paths += done.paths
            out.sizes += done.sizes
            out.locations += done.locations
            out.descriptors += done.descriptors
            for file, offset, shape in done.locations:
                if file not in maps:
                    maps[file] = np.memmap(file, dtype=np.float16, mode="r")
                out.features.append(maps[file][offset // 2:offset // 2 + int(np.prod(shape))].reshape(shape))
        progress.close()
        return out

    def make_masks(self, method: str, paths: Sequence[Path], potentials: Sequence[np.ndarray] | None, *,
                   show_progress: bool = True) -> list[np.ndarray]:
        """As :func:`segswap.collection.cosegment.make_masks`, on the workers (GrabCut, the objectness
        prior); the potentials go out, the masks come back, in order."""
        paths = [Path(p) for p in paths]
        starts = range(0, len(paths), FEATURE_TASK_IMAGES)
        run = uuid.uuid4().hex[:8]
        futures = [self.client.submit(tasks.mask_chunk, method, paths[k:k + FEATURE_TASK_IMAGES],
                                      None if potentials is None else list(potentials[k:k + FEATURE_TASK_IMAGES]),
                                      key=f"segswap-masks-{run}-{n}", pure=False) for n, k in enumerate(starts)]
        masks: list[np.ndarray] = []
        progress = tqdm(total=len(paths), unit="image", desc="masks", disable=not show_progress)
        for chunk in self._in_order(futures):
            masks += chunk
            progress.update(len(chunk))
        progress.close()
        return masks

    # -- gathering --------------------------------------------------------------------------------
    def _in_order(self, futures: list) -> Iterator:
        """The futures' results in the futures' order, each as soon as it and those before it are done;
        the rest are cancelled if the caller stops early or a task fails."""
        position = {future.key: n for n, future in enumerate(futures)}
        done: dict[int, object] = {}
        following = 0
        try:
            for future in as_completed(futures, loop=self.client.loop):
                try:
                    done[position[future.key]] = future.result()
                except KilledWorker as err:
                    raise SegswapError(f"task {err.task} killed the worker running it {err.allowed_failures + 1} times "
                                       "(out of memory?); see the workers' logs") from None
                future.release()
                while following in done:
                    yield done.pop(following)
                    following += 1
        finally:
            self.client.cancel([f for f in futures if not f.done()])


def _load_arguments(matcher) -> dict:
    arguments = getattr(matcher, "load_arguments", None)
    if arguments is None:
        raise SegswapError("this matcher was not made by segswap.load(): workers cannot rebuild it")
    if not matcher.trained:
        raise SegswapError("an untrained model has random weights in every process: a cluster cannot run it")
    return arguments
