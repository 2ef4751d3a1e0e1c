"""Where the Dask path's overhead came from (issue 26's target, 1.32× in benchmarks/scale_speed.py on
2026-12-07): the pair model over the top-k-5 descriptor pairs of MSRC's 390 images (320 px), timed

1. in one process, torch on 2 threads;
2. in two plain processes at once, torch on 1 thread each, half of the pairs each;
3. on 2 local Dask workers with Dask's own worker environment (``MALLOC_TRIM_THRESHOLD_=65536``);
4. on 2 local Dask workers as `segswap --workers 2` starts them (without it).

    .venv/bin/python lab/dask_worker_overhead.py --work W/msrc_index

Prints the seconds of each (the workers' compute time summed from Dask's task stream as well).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg" / "images"


def collection(work: Path):
    from segswap.cli.common import load_matcher
    from segswap.collection.discover import neighbour_pairs
    from segswap.collection.update import update_index

    index, _ = update_index(MSRC, work, size=320, show_progress=False)
    matcher = load_matcher(None, None, backbone=index.backbone, size=index.size)
    ids, regional = index.regional_descriptors()
    return index, matcher, neighbour_pairs(index.descriptor_index(), regional, ids, 5)


def plain(work: Path, threads: int, part: int, parts: int) -> None:
    """One process's share of the pairs (``part`` of ``parts``), torch and onnxruntime on ``threads``."""
    import torch

    from segswap.backbone.base import limit_threads
    from segswap.collection.predictions import predict_pairs

    torch.set_num_threads(threads)
    limit_threads(threads)
    index, matcher, pairs = collection(work)
    mine = pairs[part::parts]
    predict_pairs(matcher, index.features, mine[:16], show_progress=False)  # warm-up: models loaded, graphs built
    start = time.perf_counter()
    predict_pairs(matcher, index.features, mine, show_progress=False)
    print(json.dumps({"pairs": len(mine), "seconds": time.perf_counter() - start}), flush=True)


def on_dask(work: Path, dask_environment: bool) -> tuple[float, float]:
    import dask.config
    from distributed import get_task_stream

    from segswap.cluster import engine as cluster

    index, matcher, pairs = collection(work)
    environment = dask.config.get("distributed.nanny.pre-spawn-environ")
    original = cluster.worker_environment
    if dask_environment:
        cluster.worker_environment = lambda: environment
    try:
        with cluster.open_engine(workers=2, show_progress=False) as engine:
            engine.predict_pairs(matcher, index.feature_locations(), pairs[:64], show_progress=False)  # warm-up
            with get_task_stream(client=engine.client) as stream:
                start = time.perf_counter()
                engine.predict_pairs(matcher, index.feature_locations(), pairs, show_progress=False)
                seconds = time.perf_counter() - start
    finally:
        cluster.worker_environment = original
    compute = sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"] if s["action"] == "compute")
    return seconds, compute


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="index folder (made on the first run)")
    parser.add_argument("--plain", nargs=3, type=int, help=argparse.SUPPRESS)  # threads part parts: a child
    args = parser.parse_args()
    if args.plain:
        plain(args.work, *args.plain)
        return
    _, _, pairs = collection(args.work)
    command = [sys.executable, __file__, "--work", str(args.work), "--plain"]
    one = _last_json(subprocess.run(command + ["2", "0", "1"], capture_output=True, text=True, check=True).stdout)
    print(f"{len(pairs)} pairs; one process, 2 threads: {one['seconds']:.1f} s", flush=True)
    children = [subprocess.Popen(command + ["1", str(k), "2"], stdout=subprocess.PIPE, text=True) for k in range(2)]
    halves = [_last_json(child.communicate()[0]) for child in children]
    print(f"two plain processes at once, 1 thread each: {max(h['seconds'] for h in halves):.1f} s "
          f"({sum(h['seconds'] for h in halves):.1f} process-seconds)", flush=True)
    for label, dask_environment in (("2 Dask workers, Dask's worker environment", True),
                                    ("2 Dask workers as segswap starts them", False)):
        seconds, compute = on_dask(args.work, dask_environment)
        print(f"{label}: {seconds:.1f} s ({compute:.1f} worker-seconds computing)", flush=True)


if __name__ == "__main__":
    main()
