"""The cluster options of the collection commands, checked before any work and without Dask."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..errors import SegswapError

SCHEDULER_HELP = ("Run on the Dask cluster whose scheduler listens here (tcp://HOST:PORT); its workers must "
                  "see the images and folders at the same paths (docs/scale.md).")
WORKERS_HELP = ("Run on a Dask cluster of this many local worker processes (at most one per core), started and "
                "stopped by the command.")
SCRATCH_HELP = ("Folder for the workers' feature shards, seen by every worker at this path (default: a temporary "
                "folder; needed with --scheduler).")
#: Schemes a Dask client can connect with (without UCX, which needs extra packages).
SCHEMES = ("tcp", "tls")


def check_engine_options(scheduler: str | None, workers: int | None, scratch: Path | None = None,
                         needs_scratch: bool = False) -> None:
    """Refuse bad cluster options in one line: both options, a malformed address, a worker count below 1,
    a remote cluster without the shared ``--scratch`` folder a command needs."""
    if scheduler is not None and workers is not None:
        raise SegswapError("--scheduler and --workers exclude each other: a remote cluster or a local one")
    if workers is not None and workers < 1:
        raise SegswapError(f"--workers must be at least 1, got {workers}")
    if scheduler is not None:
        parts = urlsplit(scheduler)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in SCHEMES or not parts.hostname or port is None or parts.path not in ("", "/"):
            raise SegswapError(f"--scheduler {scheduler!r}: expected {'|'.join(SCHEMES)}://HOST:PORT, "
                               "e.g. tcp://10.0.0.5:8786")
        if needs_scratch and scratch is None:
            raise SegswapError("--scheduler needs --scratch DIR: a folder every worker sees at the same path, "
                               "for their feature shards")
    if scratch is not None:
        if scratch.exists() and not scratch.is_dir():
            raise SegswapError(f"--scratch {scratch}: not a folder")
