"""The distributed path's overhead, and the client's memory for discovery at 100,000 images (issue 26).

    flock /work/heavy.lock .venv/bin/python benchmarks/scale_speed.py [--count 500] [--workers 2]

1. **Overhead.** A collection of ``--count`` images: the 390 MSRC co-segmentation images
   (../shared/data/eval/msrc_coseg) and mirrored copies of the first ones up to the count, written as
   PNG to a temporary folder. `index` (default backbone, 320 px: the shipped SegSwap weights' size)
   and `discover` (shipped SegSwap model, top-k 5) run once in this process and once on a LocalCluster
   of ``--workers`` local worker processes; the table gives both times and their ratio, and checks that
   the rows and clusters are the same. Target: the distributed path ≤ 1.2× the single process.
2. **Client memory at 100,000 images.** In a fresh process per count: what discovery's client holds
   and computes for each of ``--simulate`` image counts, sized from the run above (pairs per image, nodes per pair, edges per node,
   the mean feature grid): every pair's prediction (masks and flows, float32, as the workers return
   them), the node list, a random sparse symmetric graph with that many nodes and edges, its
   ``N_EIG`` leading eigenvectors and k-means on their embedding (one initialisation, 5 iterations:
   k-means' memory does not grow with iterations). Peak resident memory is reported, or that the
   simulation ran out of its 12 GiB address space. Target ≤ 4 GB at 100,000 images.
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine_summary, print_table  # noqa: E402

MSRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval" / "msrc_coseg" / "images"
SIZE = 320
#: Address space the memory simulation may take (torch's import alone reserves ≈1 GiB of it).
SIMULATION_LIMIT = 12 * 2**30
#: Seconds the simulation may run.
SIMULATION_SECONDS = 1800


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


def simulate(images: int, pairs_per_image: float, nodes_per_pair: float, edges_per_node: float, grid: list[int],
             seed: int = 0) -> dict:
    """Discovery's client side at ``images`` images, with random data of the measured sizes."""
    import scipy.sparse
    from sklearn.cluster import KMeans

    from segswap.collection.discover import N_EIG, default_clusters
    from segswap.collection.graph import Nodes, leading_eigenvectors
    from segswap.collection.pairs import PairPrediction

    rng = np.random.default_rng(seed)
    h, w = grid
    n_pairs = int(images * pairs_per_image)
    start = time.perf_counter()
    predictions = [PairPrediction(int(a), int(b), np.zeros((h, w), np.float32), np.zeros((h, w), np.float32),
                                  np.zeros((h, w, 2), np.float32), np.zeros((h, w, 2), np.float32), 0.0, 0.0)
                   for a, b in rng.integers(0, images, (n_pairs, 2))]
    n = int(n_pairs * nodes_per_pair)
    pair = np.sort(rng.integers(0, n_pairs, n))
    nodes = Nodes(pair, rng.integers(0, images, n), rng.integers(0, images, n), rng.integers(0, min(h, w), (n, 2)),
                  rng.integers(0, min(h, w), (n, 2)), rng.random(n, dtype=np.float32))
    # Edges join nodes close in the node list (the same pair, or pairs sharing an image): a band.
    m = int(n * edges_per_node / 2)
    rows = rng.integers(0, n, m)
    cols = np.clip(rows + rng.integers(-200, 200, m), 0, n - 1)
    values = rng.random(m, dtype=np.float32)
    graph = scipy.sparse.coo_matrix((np.concatenate([values, values]), (np.concatenate([rows, cols]),
                                     np.concatenate([cols, rows]))), shape=(n, n)).tocsr()
    built = time.perf_counter()
    eigenvalues, vectors = leading_eigenvectors(graph, N_EIG)
    embedding = np.abs(vectors) * np.clip(eigenvalues, 0, None)
    eigen = time.perf_counter()
    KMeans(n_clusters=default_clusters(images), n_init=1, max_iter=5, random_state=0).fit(embedding)
    clustered = time.perf_counter()
    del predictions, nodes
    return {"images": images, "pairs": n_pairs, "nodes": n, "edges": graph.nnz,
            "seconds": {"build": built - start, "eigenvectors": eigen - built, "kmeans (5 iterations)": clustered - eigen},
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--simulate", type=lambda text: [int(n) for n in text.split(",")], default=[1000, 2500, 100_000],
                        help="image counts of the client-memory simulation, comma-separated")
    parser.add_argument("--simulate-only", help=argparse.SUPPRESS)  # JSON sizes: the child process's work
    args = parser.parse_args()
    if args.simulate_only:
        # A shared machine: past the limit the simulation fails alone instead of swapping everyone out.
        resource.setrlimit(resource.RLIMIT_AS, (SIMULATION_LIMIT, SIMULATION_LIMIT))
        try:
            print(json.dumps(simulate(**json.loads(args.simulate_only))))
        except MemoryError:
            print(json.dumps({"error": f"out of memory at the {SIMULATION_LIMIT / 2**30:.0f} GiB address-space limit"}))
        return
    if not MSRC.is_dir():
        sys.exit(f"needs {MSRC}")
    print(machine_summary())
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
    print(f"same index rows: {same_rows}; same clusters: {same_clusters} ({len(found.clusters)} clusters); "
          f"{found.images} images, {found.pairs} pairs, {found.nodes} nodes, {found.edges} edges")
    per_image, per_pair = single["index"] / found.images, single["pairs"] / found.pairs
    print(f"measured, single process: {1000 * per_image:.1f} ms per image (index), {1000 * per_pair:.1f} ms per pair "
          f"(pair model), {found.pairs / found.images:.2f} pairs per image, {found.nodes / found.pairs:.1f} nodes per "
          f"pair, {found.edges / max(found.nodes, 1):.1f} edges per node, client stage of discover "
          f"{single['discover: the rest (client)']:.1f} s")
    sizes = {"pairs_per_image": found.pairs / found.images, "nodes_per_pair": found.nodes / found.pairs,
             "edges_per_node": found.edges / max(found.nodes, 1), "grid": single["grid"]}
    for images in args.simulate:
        simulate_client(images, sizes)


def simulate_client(images: int, sizes: dict) -> None:
    """Run :func:`simulate` in a fresh process (its own peak memory) and print what it measured."""
    try:
        child = subprocess.run([sys.executable, __file__, "--simulate-only", json.dumps({"images": images, **sizes})],
                               capture_output=True, text=True, timeout=SIMULATION_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"client memory, discovery at {images:,} images: the simulation took more than {SIMULATION_SECONDS} s")
        return
    if child.returncode:
        sys.exit(child.stderr)
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    if "error" in memory:
        print(f"client memory, discovery at {images:,} images: {memory['error']}")
        return
    print(f"client memory, discovery at {images:,} images (simulated: {memory['pairs']:,} pairs of "
          f"{sizes['grid'][0]}×{sizes['grid'][1]} cells, {memory['nodes']:,} nodes, {memory['edges']:,} edges): "
          f"peak RSS **{memory['peak_rss_gib']:.2f} GiB** (target ≤ 4 at 100,000); seconds "
          + ", ".join(f"{k} {v:.0f}" for k, v in memory["seconds"].items()))


if __name__ == "__main__":
    main()
