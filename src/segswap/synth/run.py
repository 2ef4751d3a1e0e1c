"""A generation run (:func:`generate`): settings checked before any work, the sources scanned once and
catalogued, pairs made by worker processes (one thread each), resumed after a kill, progress with an ETA."""


from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
from threadpoolctl import threadpool_limits

from ..errors import SegswapError
from ..grid import check_input_size
from . import writer
from .compose import BLEND_MODES
from .conditions import CONDITIONS
from .swapping import STAGES, PairMaker, Settings, Sources
from .preview import write_preview
from .segments import ScanReport, catalogue_from_json, catalogue_to_json, readable_images, scan_sources

#: Bumped when the same seed would give different pairs; part of OUT/config.json.
#: 2: token masks keep every cell with a point visible in the other image (1 dropped a third of the
#: object cells through a cell-level round trip; segswap.synth.truth).
FORMAT_VERSION = 2
BLEND_SETTINGS = ("poisson",) + BLEND_MODES


@dataclass
class Summary:
    """What a :func:`generate` run did."""

    out: Path
    requested: int
    written: int = 0
    already_done: int = 0
    failed: list[int] = field(default_factory=list)
    source_images: int = 0
    segments: int = 0
    backgrounds: int = 0
    styles: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pairs_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def generate(
    segments: Sequence[str | os.PathLike],
    backgrounds: str | os.PathLike,
    out: str | os.PathLike,
    n: int,
    *,
    seed: int = 0,
    size: int = 480,
    workers: int | None = None,
    styles: str | os.PathLike | None = None,
    unsupervised: bool = False,
    negatives: float = 0.0,
    blend: str = "poisson",
    style: bool = True,
    conditions: Sequence[str] = (),
    condition_rate: float = 0.5,
    preview: str | os.PathLike | None = None,
    progress: bool = True,
) -> Summary:
    """Write ``n`` synthetic pairs (ids 0..n-1) into ``out``, continuing an earlier run there if any.

    ``segments``: YOLO-seg or co-segmentation folders (or plain photo folders with ``unsupervised``);
    ``backgrounds``: a photo folder; ``styles``: paintings for the colour/AdaIN-like styles.
    ``negatives``: fraction of stored pairs that share nothing. ``blend``: ``poisson`` (normal or mixed
    seamless cloning per object), ``normal``, ``mixed`` or ``copy``. ``style=False`` keeps photos as
    they are. ``conditions``: names from :data:`segswap.synth.conditions.CONDITIONS`; that fraction
    (``condition_rate``) of the pairs gets one of them on image a or b. ``preview``: path of a contact
    sheet to write at the end.
    """
    settings = _check(n, size, negatives, blend, workers, style, conditions, condition_rate)
    out = Path(out)
    seg_dirs = [Path(p).resolve() for p in segments]
    bg_dir = Path(backgrounds).resolve()
    style_dir = Path(styles).resolve() if styles is not None else None
    if not seg_dirs:
        raise SegswapError("give at least one --segments folder")
    for folder, what in [(bg_dir, "backgrounds")] + ([(style_dir, "styles")] if style_dir else []):
        if not folder.is_dir():
            raise SegswapError(f"{folder}: {what} folder not found")
    config = {
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "settings": _settings_record(settings),
        "segments": [str(p) for p in seg_dirs],
        "unsupervised": unsupervised,
        "backgrounds": str(bg_dir),
        "styles": str(style_dir) if style_dir else None,
    }
    resuming = writer.prepare(out, config)
    try:
        sources, scan_warnings = _load_or_scan(out, seg_dirs, bg_dir, style_dir, unsupervised)
        if not sources.images:
            raise SegswapError(f"no usable segments in {', '.join(map(str, seg_dirs))}")
        if not sources.backgrounds:
            raise SegswapError(f"{bg_dir}: no readable background photos")
    except SegswapError:
        if not resuming:  # nothing was made: leave --out as it was, so a run with other inputs may use it
            writer.unclaim(out)
        raise
    summary = Summary(out=out, requested=n, source_images=len(sources.images),
                      segments=sum(len(s.segments) for s in sources.images),
                      backgrounds=len(sources.backgrounds), styles=len(sources.styles), warnings=list(scan_warnings))

    writer.remove_partial(out)
    done = set(writer.rebuild_manifest(out))
    todo = [i for i in range(n) if writer.pair_id(i) not in done]
    summary.already_done = n - len(todo)
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    if workers > 1 and not _main_reimportable():
        summary.warnings.append("worker processes cannot re-import the calling script (stdin or an interactive "
                                "session), so the pairs are made in this process")
        workers = 1
    try:
        for index, ok, warnings, stage_seconds in _run(todo, sources, settings, seed, out, workers, progress):
            summary.warnings.extend(warnings)
            for stage, seconds in stage_seconds.items():
                summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + seconds
            if ok:
                writer.append_manifest(out, writer.pair_id(index))
                summary.written += 1
            else:
                summary.failed.append(index)
    finally:
        summary.seconds = time.perf_counter() - start
        writer.rebuild_manifest(out)  # index order, whatever order the workers finished in
    if preview is not None:
        write_preview(out, Path(preview))
    return summary


def _settings_record(settings: Settings) -> dict:
    """The settings as config.json stores them; without conditions, exactly as before they existed, so
    folders made then are continued (their pairs are the same)."""
    record = asdict(settings)
    record["conditions"] = list(settings.conditions)
    if not settings.conditions:
        del record["conditions"], record["condition_rate"]
    return record


def _check(n: int, size: int, negatives: float, blend: str, workers: int | None, style: bool,
           conditions: Sequence[str] = (), condition_rate: float = 0.5) -> Settings:
    if n < 0:
        raise SegswapError(f"-n must be 0 or more (got {n})")
    check_input_size(size, minimum=64)
    if not 0.0 <= negatives <= 1.0:
        raise SegswapError(f"--negatives is a fraction in [0, 1] (got {negatives})")
    if blend not in BLEND_SETTINGS:
        raise SegswapError(f"--blend must be one of {', '.join(BLEND_SETTINGS)} (got {blend!r})")
    if workers is not None and workers < 1:
        raise SegswapError(f"--workers must be at least 1 (got {workers})")
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise SegswapError(f"unknown condition {unknown[0]!r}; choose from {', '.join(CONDITIONS)}")
    if not 0.0 <= condition_rate <= 1.0:
        raise SegswapError(f"--condition-rate is a fraction in [0, 1] (got {condition_rate})")
    return Settings(size=size, blend=blend, negatives=negatives, style=style, conditions=tuple(conditions),
                    condition_rate=condition_rate)


def _load_or_scan(out: Path, seg_dirs: list[Path], bg_dir: Path, style_dir: Path | None,
                  unsupervised: bool) -> tuple[Sources, list[str]]:
    """The catalogue saved by an earlier run in ``out``, or a fresh scan saved there."""
    path = out / "segments.json"
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        sources = Sources(catalogue_from_json(saved["sources"]), saved["backgrounds"], saved["styles"])
        return sources, saved["warnings"]
    report = scan_sources(seg_dirs, unsupervised)
    background_report, style_report = ScanReport(), ScanReport()
    background_paths = readable_images(bg_dir, background_report)
    style_paths = readable_images(style_dir, style_report) if style_dir else []
    warnings = report.warnings + background_report.warnings + style_report.warnings
    saved = {"sources": catalogue_to_json(report.sources), "backgrounds": background_paths,
             "styles": style_paths, "warnings": warnings}
    tmp = out / "segments.json.tmp"
    tmp.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return Sources(report.sources, background_paths, style_paths), warnings


#: prctl option: the signal the kernel sends this process when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
_MAKER: PairMaker | None = None
_OUT: Path | None = None
_THREAD_LIMITS = ExitStack()


def _main_reimportable() -> bool:
    """Whether spawned workers can re-import ``__main__``: they run its file again, which fails (and
    leaves the pool waiting) when the caller is stdin or an interactive session."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return getattr(main, "__spec__", None) is not None or path is None or Path(path).is_file()


@contextmanager
def _one_thread_each():
    """OpenCV, BLAS and (if loaded) torch on one thread: the pool is the parallelism."""
    torch = sys.modules.get("torch")  # a caller may have imported torch before forking
    saved_cv2, saved_torch = cv2.getNumThreads(), torch.get_num_threads() if torch else None
    cv2.setNumThreads(1)
    if torch:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        cv2.setNumThreads(saved_cv2)
        if torch:
            torch.set_num_threads(saved_torch)


def _set_worker(sources: Sources, settings: Settings, seed: int, out: Path) -> None:
    global _MAKER, _OUT
    _MAKER, _OUT = PairMaker(sources, settings, seed), out


def _clear_worker() -> None:
    """Drop the in-process maker and its image cache (up to 512 MB) once a run is over."""
    global _MAKER, _OUT
    _MAKER = _OUT = None


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this worker when its parent dies (a ``kill -9`` of `segswap synth` otherwise
    leaves the workers finishing their pairs); where prctl is missing, a thread polls the parent."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):  # not Linux
        def watch():
            while os.getppid() == parent_pid:
                time.sleep(1)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _init_worker(sources: Sources, settings: Settings, seed: int, out: Path, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    _THREAD_LIMITS.enter_context(_one_thread_each())  # for the worker process's whole life
    _set_worker(sources, settings, seed, out)


def _make_one(index: int) -> tuple[int, bool, list[str], dict[str, float]]:
    pair, warnings = _MAKER.make(index)
    if pair is not None:
        with _MAKER.timer.stage("write"):
            writer.write_pair(_OUT, index, pair)
    seconds = dict(_MAKER.timer.seconds)
    _MAKER.timer.seconds.clear()
    return index, pair is not None, warnings, seconds


def _run(todo: list[int], sources: Sources, settings: Settings, seed: int, out: Path, workers: int,
         progress: bool) -> Iterable[tuple[int, bool, list[str], dict[str, float]]]:
    with _Progress(len(todo), progress) as advance:
        if workers == 1 or len(todo) <= 1:
            _set_worker(sources, settings, seed, out)
            try:
                with _one_thread_each():
                    for index in todo:
                        result = _make_one(index)
                        advance()
                        yield result
            finally:
                _clear_worker()
            return
        # Spawned, not forked: a fork after onnxruntime (unsupervised segments) or BLAS started their
        # threads can leave workers deadlocked on a lock held by a thread that no longer exists.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(sources, settings, seed, out, os.getpid())) as pool:
            pending, queue = set(), iter(todo)
            try:
                while True:
                    # A bounded window of submitted pairs keeps memory flat for any -n.
                    for index in queue:
                        pending.add(pool.submit(_make_one, index))
                        if len(pending) >= 4 * workers:
                            break
                    if not pending:
                        break
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        advance()
                        yield future.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


class _Progress:
    """A rich progress bar with ETA on stderr, or nothing."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
        self.bar.start()
        task = self.bar.add_task("pairs", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


__all__ = ["generate", "Summary", "STAGES"]
