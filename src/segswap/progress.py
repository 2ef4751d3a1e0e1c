"""Progress on stderr for steps without a bar of their own: what is being done, and how long it took.

Bars (tqdm, with ETA) count items; :func:`stage` covers the steps in between (a shortlist, a graph, an
eigen-decomposition), so no stage of a command sits silent for more than a moment.
"""

from __future__ import annotations

import time
from contextlib import contextmanager


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
