"""The distributed path's overhead, and the client's memory for discovery at 100,000 images (issue 26).

    flock /work/heavy.lock .venv/bin/python benchmarks/scale_speed.py [--count 500] [--workers 2]
    flock /work/heavy.lock nice -n 5 .venv/bin/python benchmarks/scale_speed.py --memory-only [--simulate 1000,2500,100000]

1. **Overhead.** A collection of ``--count`` images: the 390 MSRC co-segmentation images
   (../shared/data/eval/msrc_coseg) and mirrored copies of the first ones up to the count, written as
   PNG to a temporary folder. `index` (default backbone, 320 px: the shipped SegSwap weights' size)
   and `discover` (shipped SegSwap model, top-k 5) run once in this process and once on a LocalCluster
   of ``--workers`` local worker processes; the table gives both times and their ratio, and checks that
   the rows and clusters are the same. Target: the distributed path ≤ 1.2× the single process.
2. **Client memory at 100,000 images.** In a fresh process per count of ``--simulate`` (``--memory-only``:
   only this, sized from the run recorded in docs/scale.md): random predictions shaped like the run
   above's (its nodes per pair and mean feature grid; a neighbour graph of images with its triangles,
   flows consistent up to a random shift; :func:`simulated_predictions`) go through what discovery's
   client runs on the predictions the workers return — :class:`~segswap.collection.graph.StreamedPairs`,
   then :func:`~segswap.collection.discover.find_patterns` (the split into parts of at most
   ``NODE_BUDGET`` nodes, each part's graph, eigenvectors and k-means). Peak resident memory is
   reported, or that the simulation ran out of its 12 GiB address space. Target ≤ 4 GB at 100,000 images.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, print_table, run_and_record  # noqa: E402

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg" / "images"
SIZE = 320
#: Address space the memory simulation may take (torch's import alone reserves ≈1 GiB of it).
SIMULATION_LIMIT = 12 * 2**30
#: Seconds the simulation may run.
SIMULATION_SECONDS = 3600
#: The simulated collection's neighbours per image and flow inconsistency (cells): with these its density
#: is near the measured one (3.54 pairs per image against 3.60; ≈55 edges per node against 58).
SIMULATED_NEIGHBOURS = 6
SIMULATED_JITTER = 1.0
#: The sizes measured by the run of docs/scale.md (500 images, 2026-12-06), for --memory-only.
RECORDED = {"nodes_per_pair": 34.8, "grid": [13, 20]}


def make_collection(folder: Path, count: int) -> int:
    """MSRC's images, then mirrored copies of the first ones, ``count`` in all; returns the mirrored count."""
    import cv2

    originals = sorted(MSRC.glob("*/*.png"))
    for path in originals[:count]:
        (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.parent.name / path.name)
    mirrored = max(0, count - len(originals))
    for path in originals[:mirrored]:
        image = cv2.imread(str(path))
        cv2.imwrite(str(folder / path.parent.name / f"mirrored_{path.name}"), image[:, ::-1])
    return mirrored


def run(folder: Path, index_dir: Path, top_k: int, engine) -> dict:
    import segswap
    from segswap.collection import discover as discover_module
    from segswap.collection.discover import discover
    from segswap.collection.update import update_index

    # The pair stage timed apart: it is what workers share; the rest of discover stays on the client.
    pair_seconds = []

    def timed(predict):
        def run_timed(*args, **kwargs):
            start = time.perf_counter()
            result = predict(*args, **kwargs)
            pair_seconds.append(time.perf_counter() - start)
            return result
        return run_timed

    original = discover_module.predict_pairs
    if engine is None:
        discover_module.predict_pairs = timed(original)
    else:
        engine.predict_pairs = timed(engine.predict_pairs)

    start = time.perf_counter()
    index, _ = update_index(folder, index_dir, size=SIZE, show_progress=False, engine=engine)
    indexed = time.perf_counter()
    matcher = segswap.load("segswap", size=index.size)
    try:
        found = discover(index, matcher, top_k=top_k, show_progress=False, engine=engine)
    finally:
        discover_module.predict_pairs = original
    done = time.perf_counter()
    rows = index.db.execute("SELECT path, sha1, grid_h, grid_w FROM images ORDER BY id").fetchall()
    grids = np.array([r[2:] for r in rows])
    return {"index": indexed - start, "discover": done - indexed, "pairs": sum(pair_seconds), "rows": rows, "found": found,
            "clusters": [sorted(str(m.image.path) for m in c.images) for c in found.clusters],
            "cells": float(np.mean(grids[:, 0] * grids[:, 1])), "grid": grids.mean(0).round().astype(int).tolist()}


def simulated_predictions(images: int, nodes_per_pair: float, grid: list[int], top_k: int, jitter: float,
                          seed: int = 0) -> tuple[list[tuple[int, int]], Iterator]:
    """Random predictions shaped like real ones: images are random points in a square, each paired with its
    ``top_k`` nearest (a neighbour graph with the triangles the 3-cycles need); each image holds an object
    at a random cell, every pair's masks are confident on a disc of ``nodes_per_pair`` cells around it in
    both images, and its flows carry one object onto the other, off by a random shift of ``jitter`` cells
    per pair (real flows are not perfectly consistent: the shift sets how many 3-cycle edges survive)."""
    from scipy.spatial import cKDTree

    from segswap.collection.predictions import PairPrediction

    rng = np.random.default_rng(seed)
    h, w = grid
    points = rng.random((images, 2))
    _, near = cKDTree(points).query(points, top_k + 1)
    pairs = sorted({(min(i, int(j)), max(i, int(j))) for i, row in enumerate(near) for j in row[1:]})
    radius = np.sqrt(nodes_per_pair / np.pi)
    margin = int(np.ceil(radius))
    centres = np.stack([rng.integers(margin, w - margin, images), rng.integers(margin, h - margin, images)], 1)
    ys, xs = np.mgrid[0:h, 0:w]
    cells = np.stack([xs, ys], -1).astype(np.float32)

    def one(a: int, b: int) -> PairPrediction:
        masks, flows = [], []
        for source, target in ((a, b), (b, a)):
            inside = np.hypot(xs - centres[source][0], ys - centres[source][1]) <= radius
            masks.append(np.where(inside, rng.uniform(0.86, 0.99, (h, w)), 0.1).astype(np.float32))
            moved = cells - centres[source] + centres[target] + rng.normal(0, jitter, 2)
            flows.append(((moved + 0.5) / [w, h]).clip(0, 1).astype(np.float32))
        return PairPrediction(a, b, masks[0], masks[1], flows[0], flows[1], 0.0, 0.0)

    return pairs, ((k, one(a, b)) for k, (a, b) in enumerate(pairs))


def simulate(images: int, nodes_per_pair: float, grid: list[int], top_k: int, jitter: float,
             budget: int | None = None) -> dict:
    """Discovery's client side at ``images`` images: random predictions (:func:`simulated_predictions`)
    through the functions discovery runs on them — streamed into nodes and the flow file, the graph split
    into parts of at most ``budget`` nodes (discovery's NODE_BUDGET), each part's graph, eigenvectors and
    k-means."""
    from segswap.collection.discover import default_clusters, find_patterns
    from segswap.collection.graph import StreamedPairs

    start = time.perf_counter()
    pairs, predictions = simulated_predictions(images, nodes_per_pair, grid, top_k, jitter)
    with tempfile.TemporaryDirectory() as folder, StreamedPairs(pairs, Path(folder)) as streamed:
        for position, prediction in predictions:
            streamed(position, prediction)
        nodes = streamed.nodes()
        streamed_at = time.perf_counter()
        patterns = find_patterns(nodes, pairs, streamed, default_clusters(images), show_progress=True, budget=budget)
    done = time.perf_counter()
    return {"images": images, "pairs": len(pairs), "nodes": len(nodes), "edges": patterns.edges,
            "dropped": patterns.dropped_edges, "parts": len(patterns.parts), "clusters": len(patterns.clusters),
            "seconds": {"predictions → nodes": streamed_at - start, "graph, eigenvectors, k-means": done - streamed_at},
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--simulate", type=lambda text: [int(n) for n in text.split(",")], default=[1000, 2500, 100_000],
                        help="image counts of the client-memory simulation, comma-separated")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the client-memory simulation, sized from the run recorded in docs/scale.md")
    parser.add_argument("--simulate-only", help=argparse.SUPPRESS)  # JSON sizes: the child process's work
    add_json_argument(parser)
    args = parser.parse_args()
    if args.simulate_only:
        # A shared machine: past the limit the simulation fails alone instead of swapping everyone out.
        resource.setrlimit(resource.RLIMIT_AS, (SIMULATION_LIMIT, SIMULATION_LIMIT))
        try:
            print(json.dumps(simulate(**json.loads(args.simulate_only))))
        except MemoryError:
            print(json.dumps({"error": f"out of memory at the {SIMULATION_LIMIT / 2**30:.0f} GiB address-space limit"}))
        return
    print(machine_summary())
    if args.memory_only:
        print_memory_table([simulate_client(images, RECORDED) for images in args.simulate])
        return
    if not MSRC.is_dir():
        sys.exit(f"needs {MSRC}")
    from segswap.cluster.engine import open_engine

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mirrored = make_collection(tmp / "images", args.count)
        print(f"{args.count} images: the MSRC co-segmentation images and {mirrored} mirrored copies; index at {SIZE} px, "
              f"discover with the shipped SegSwap model, top-k {args.top_k}")
        single = run(tmp / "images", tmp / "single", args.top_k, None)
        started = time.perf_counter()
        with open_engine(workers=args.workers) as engine:
            startup = time.perf_counter() - started
            spread = run(tmp / "images", tmp / "spread", args.top_k, engine)
    same_rows = single["rows"] == spread["rows"]
    same_clusters = single["clusters"] == spread["clusters"]
    found = single["found"]
    for run_times in (single, spread):
        run_times["discover: pair model"] = run_times["pairs"]
        run_times["discover: the rest (client)"] = run_times["discover"] - run_times["pairs"]
    table = []
    for stage in ("index", "discover", "discover: pair model", "discover: the rest (client)"):
        table.append([stage, f"{single[stage]:.1f}", f"{spread[stage]:.1f}", f"{spread[stage] / single[stage]:.2f}×"])
    total_1, total_n = single["index"] + single["discover"], spread["index"] + spread["discover"]
    table.append(["total", f"{total_1:.1f}", f"{total_n:.1f}", f"**{total_n / total_1:.2f}×**"])
    table.append(["total + starting the cluster", f"{total_1:.1f}", f"{total_n + startup:.1f}",
                  f"{(total_n + startup) / total_1:.2f}×"])
    print_table(["stage", "single process (s)", f"{args.workers} local workers (s)", "ratio"], table)
    print_table(["", "images", "pairs", "nodes", "edges", "clusters", "same index rows", "same clusters"],
                [["single process and workers", found.images, f"{found.pairs:,}", f"{found.nodes:,}", f"{found.edges:,}",
                  len(found.clusters), "yes" if same_rows else "**no**", "yes" if same_clusters else "**no**"]])
    print(f"same index rows: {same_rows}; same clusters: {same_clusters} ({len(found.clusters)} clusters); "
          f"{found.images} images, {found.pairs} pairs, {found.nodes} nodes, {found.edges} edges")
    per_image, per_pair = single["index"] / found.images, single["pairs"] / found.pairs
    print(f"measured, single process: {1000 * per_image:.1f} ms per image (index), {1000 * per_pair:.1f} ms per pair "
          f"(pair model), {found.pairs / found.images:.2f} pairs per image, {found.nodes / found.pairs:.1f} nodes per "
          f"pair, {found.edges / max(found.nodes, 1):.1f} edges per node, client stage of discover "
          f"{single['discover: the rest (client)']:.1f} s")
    # The cost model: the work that spreads over W workers (one core each), per image, from the workers' run.
    worker_index = spread["index"] * args.workers / found.images
    worker_pair = spread["pairs"] * args.workers / found.pairs
    per_image_cost = worker_index + found.pairs / found.images * worker_pair
    print_table(["images", "worker-hours", *(f"W = {w}" for w in COST_WORKERS)],
                [[f"{n:,}", f"{n * per_image_cost / 3600:.2f}", *(_duration(n * per_image_cost / w) for w in COST_WORKERS)]
                 for n in COST_IMAGES],
                title=f"Cost model: {1000 * worker_index:.0f} worker-ms an image to index, {found.pairs / found.images:.2f} "
                      f"pairs an image at top-k {args.top_k}, {1000 * worker_pair:.0f} worker-ms a pair: "
                      f"{per_image_cost:.3f} worker-seconds an image; the time on W workers, T = N × that / W "
                      "(plus the cluster's start and the discovery's client part)")
    sizes = {"nodes_per_pair": found.nodes / found.pairs, "grid": single["grid"]}
    print_memory_table([simulate_client(images, sizes) for images in args.simulate])


#: The cost model's collection sizes and worker counts.
COST_IMAGES, COST_WORKERS = (10_000, 100_000, 1_000_000), (16, 64, 256)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def print_memory_table(rows: list[list[str]]) -> None:
    print_table(["images (simulated)", "pairs", "nodes", "edges", "parts", "edges between parts dropped",
                 "client peak memory (GiB)", "seconds"], rows, title="Client memory of discovery (target ≤ 4 GiB at 100,000 images)")


def simulate_client(images: int, sizes: dict) -> list[str]:
    """Run :func:`simulate` in a fresh process (its own peak memory), print what it measured and return it as a
    table row."""
    task = {"images": images, **sizes, "top_k": SIMULATED_NEIGHBOURS, "jitter": SIMULATED_JITTER}
    try:
        # stderr passes through: the stages' progress, with ETA
        child = subprocess.run([sys.executable, __file__, "--simulate-only", json.dumps(task)],
                               stdout=subprocess.PIPE, text=True, timeout=SIMULATION_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"client memory, discovery at {images:,} images: the simulation took more than {SIMULATION_SECONDS} s")
        return [f"{images:,}", *["–"] * 5, "–", f"> {SIMULATION_SECONDS}"]
    if child.returncode:
        sys.exit(f"the simulation at {images:,} images failed (exit status {child.returncode}; its stderr is above)")
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    if "error" in memory:
        print(f"client memory, discovery at {images:,} images: {memory['error']}")
        return [f"{images:,}", *["–"] * 5, memory["error"], "–"]
    print(f"client memory, discovery at {images:,} images (simulated: {memory['pairs']:,} pairs of "
          f"{sizes['grid'][0]}×{sizes['grid'][1]} cells, {memory['nodes']:,} nodes, {memory['edges']:,} edges in "
          f"{memory['parts']} part(s), {memory['dropped']:,} between parts dropped, {memory['clusters']} clusters): "
          f"peak RSS **{memory['peak_rss_gib']:.2f} GiB** (target ≤ 4 at 100,000); seconds "
          + ", ".join(f"{k} {v:.0f}" for k, v in memory["seconds"].items()), flush=True)
    return [f"{images:,}", f"{memory['pairs']:,}", f"{memory['nodes']:,}", f"{memory['edges']:,}", str(memory["parts"]),
            f"{memory['dropped']:,}", f"{memory['peak_rss_gib']:.2f}", f"{sum(memory['seconds'].values()):.0f}"]


if __name__ == "__main__":
    run_and_record(main)
