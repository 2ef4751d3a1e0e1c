"""Long work in the background, with progress the pages poll, so no request waits on a search.

A :class:`Lane` is one worker thread that runs its jobs in order and owns what they use that must stay
on one thread (the index's SQLite connection). The viewer has two lanes: searches (and their
side-by-side pairs), and discovery, so a discovery of minutes does not hold up a query. Submitting a
job of a kind cancels that lane's queued or running jobs of the same kind: the latest query wins, the
earlier one stops at its next progress report, or inside the pair model (:func:`stop_if_cancelled`).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SegswapError
from ..progress import Cancelled

log = logging.getLogger("segswap.serve")

#: Finished jobs kept for polling, per lane (older ones are forgotten).
KEEP_FINISHED = 50
#: The job the calling lane thread is running (its ``job``, None between jobs).
_running = threading.local()


def stop_if_cancelled(*_module_and_inputs) -> None:
    """Raise :class:`Cancelled` if the job the calling thread runs was cancelled; nothing on any other
    thread. A forward pre-hook on the pair model's modules: a cancelled job stops within one module's
    run, not at its next progress report, a whole batch of pairs later (seconds at 480 px)."""
    job = getattr(_running, "job", None)
    if job is not None and job.cancel_requested.is_set():
        raise Cancelled()


@dataclass
class Job:
    id: int
    kind: str
    state: str = "queued"  # queued, running, done, failed, cancelled
    step: str = ""
    done: int = 0
    total: int = 0
    result: Any = None
    error: str | None = None
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, step: str, done: int, total: int) -> None:
        """A :data:`segswap.progress.ProgressReport`: records progress, stops the work if cancelled."""
        if self.cancel_requested.is_set():
            raise Cancelled()
        self.step, self.done, self.total = step, done, total

    def as_json(self) -> dict:
        end = self.finished or time.monotonic()
        return {"id": self.id, "kind": self.kind, "state": self.state, "step": self.step, "done": self.done,
                "total": self.total, "error": self.error, "result": self.result if self.state == "done" else None,
                "seconds": round(end - (self.started or end), 2)}


class Lane:
    """One worker thread and its jobs. ``resources()`` is called once, on that thread, and its value is
    passed to every job run there."""

    _ids = itertools.count(1)

    def __init__(self, name: str, resources: Callable[[], Any]):
        self.name = name
        self._make_resources = resources
        self._resources = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"segswap-{name}")
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[Any, Job], Any], *, supersede: bool = True) -> Job:
        """Queue ``work(resources, job)``; with ``supersede``, cancel this lane's earlier jobs of ``kind``."""
        job = Job(next(self._ids), kind)
        with self._lock:
            if supersede:
                for earlier in self._jobs.values():
                    if earlier.kind == kind and earlier.state in ("queued", "running"):
                        earlier.cancel_requested.set()
            self._jobs[job.id] = job
            self._forget_old()
        self._executor.submit(self._run, job, work)
        return job

    def run(self, work: Callable[[Any], Any]) -> concurrent.futures.Future:
        """``work(resources)`` on the lane's thread, after the jobs queued before it; no job record."""
        return self._executor.submit(lambda: work(self._ensure_resources()))

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def history(self, kind: str) -> list[Job]:
        """This lane's jobs of ``kind`` still remembered, oldest first."""
        with self._lock:
            return [j for j in self._jobs.values() if j.kind == kind]

    def active(self, kind: str) -> Job | None:
        """The latest queued or running job of ``kind``, if any."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.kind == kind and j.state in ("queued", "running")]
        return running[-1] if running else None

    def cancel(self, job_id: int) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            job.cancel_requested.set()
        return job

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel_requested.set()
        # Queued jobs now end at once; the resources close on the thread that opened them (SQLite insists).
        self._executor.submit(self._close_resources)
        self._executor.shutdown(wait=True)

    def _close_resources(self) -> None:
        if self._resources is not None and hasattr(self._resources, "close"):
            self._resources.close()
        self._resources = None

    def _ensure_resources(self):
        if self._resources is None:
            self._resources = self._make_resources()
        return self._resources

    def _run(self, job: Job, work) -> None:
        if job.cancel_requested.is_set():
            job.state, job.finished = "cancelled", time.monotonic()
            return
        job.state, job.started = "running", time.monotonic()
        _running.job = job
        try:
            job.result = work(self._ensure_resources(), job)
            job.state = "done"
        except Cancelled:
            job.state = "cancelled"
        except SegswapError as err:  # the user's input: said in one line, like the command line does
            job.state, job.error = "failed", str(err)
        except Exception as err:  # a bug: the page gets a line, the terminal the traceback
            log.error("%s job %d failed:\n%s", job.kind, job.id, traceback.format_exc())
            job.state, job.error = "failed", f"internal error ({type(err).__name__}: {err}); see the server's terminal"
        finally:
            _running.job = None
            job.finished = time.monotonic()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state not in ("queued", "running")]
        for job_id in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]
