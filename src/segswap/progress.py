"""Progress on stderr for steps without a bar of their own: what is being done, and how long it took.

Bars (tqdm, with ETA) count items; :func:`stage` covers the steps in between (a shortlist, a graph, an
eigen-decomposition), so no stage of a command sits silent for more than a moment. :data:`ProgressCallback` carries the same
progress to a program instead (the viewer's background jobs), and lets it cancel.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable


@contextmanager
def stage(description: str, enabled: bool = True):
    """A spinner with ``description`` on stderr while the block runs, then one line with its duration."""
    if not enabled:
        yield
        return
    from rich.console import Console

    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status(f"{description}…"):
        yield
    console.print(f"{description}: {time.perf_counter() - start:.1f} s", highlight=False, style="dim")


#: ``on_progress(step, done, total)``: progress handed to a caller that is not a terminal (the viewer's
#: background jobs). It may raise :class:`Cancelled` to stop the work at that point.
ProgressCallback = Callable[[str, int, int], None]


class Cancelled(Exception):
    """Raised by a :data:`ProgressCallback` whose caller no longer wants the result."""


def report_step(on_progress: ProgressCallback | None, step: str, done: int = 0, total: int = 0) -> None:
    """Tell ``on_progress`` (if any) where the work is; the point where a cancelled job stops."""
    if on_progress is not None:
        on_progress(step, done, total)
