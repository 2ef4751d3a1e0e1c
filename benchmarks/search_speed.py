"""Search speed on a 10,000-image index: re-ranking from cached features against recomputing backbone
features for every candidate.

    .venv/bin/python benchmarks/search_speed.py [--count 10000] [--queries 5] [--shortlist 100]

The index is synthetic but full-sized: the shared COCO-128 and photo images (about 640×480) are indexed
for real at 480 px, then more entries are written with those images' features plus noise (and their
descriptors recomputed) until the index holds ``--count`` images, so the FAISS search, the memory-mapped
feature shards (≈1.6 GB) and the SQLite rows have their real sizes. Each query is a box (the central
third) of a real indexed image. Per model (the SegSwap transformer in the default training recipe's
shape — untrained weights cost the same — and the training-free correlation model), measured in the
same run:

* ``search()`` end to end: query features, descriptor shortlist, re-ranking from cached features;
* reference: the same shortlist, but each candidate's features recomputed from its image file
  (decode, resize, backbone) before the pair model runs — what a system without the feature cache pays.

Then the floor under the pair model's share: the FLOPs one query's re-ranking does (counted by torch's
FlopCounterMode on the PyTorch graph, the backbone tail on PyTorch so that it is counted), over the machine's
fp32 matmul rate measured in the same run — the time re-ranking the shortlist would take if every operation
ran at that rate.

Target: ≤ 10 s per query at 10,000 images on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import (add_image_folder_arguments, add_json_argument, matmul_gflops, print_machine,  # noqa: E402
                      print_table, run_and_record)

import segswap  # noqa: E402
from segswap.collection.descriptor import pooled  # noqa: E402
from segswap.collection.features import model_input  # noqa: E402
from segswap.io import pixels_to_tensor  # noqa: E402
from segswap.collection.index import CollectionIndex, IndexEntry, IndexWriter, create_index  # noqa: E402
from segswap.collection.predictions import predict_pairs  # noqa: E402
from segswap.collection.search import BATCH, query_pixels, search  # noqa: E402
from segswap.collection.update import update_index  # noqa: E402
from segswap.io import load_image  # noqa: E402

NOISE = 0.05  # per-channel noise on the L2-normalised features of a synthetic entry


def transformer_matcher(size: int):
    """The shipped SegSwap model, or, until its weights ship, the default training recipe's model with
    untrained weights (same shape, same cost); and its label."""
    from segswap.shipped import shipped_weights_path
    from segswap.train.recipes import get_recipe

    if shipped_weights_path("segswap") is not None:
        return segswap.load("segswap", size=size), "SegSwap transformer (shipped weights)"
    conf = get_recipe("default")["model_conf"]
    return (segswap.load("segswap", allow_untrained=True, size=size, **conf),
            f"SegSwap transformer, default recipe (width {conf['dim']}, untrained: same cost)")


def synthetic_index(real: CollectionIndex, path: Path, count: int,
                    per_folder: int = 1) -> tuple[CollectionIndex, dict[int, Path]]:
    """An index of ``count`` entries: the real ones, then noisy copies, ``per_folder`` copies to a
    folder. Returns it and, per entry id, the real image file it derives from."""
    shutil.rmtree(path, ignore_errors=True)
    create_index(path, real.root, real.backbone, real.size, real.channels)
    index = CollectionIndex(path)
    rng = np.random.default_rng(0)
    sources = real.images()
    origin, source_of = {}, {}
    with IndexWriter(index) as writer:
        for start in range(0, count, 256):
            batch = []
            for k in range(start, min(count, start + 256)):
                source = sources[k % len(sources)]
                feats = real.features(source.id).astype(np.float32)
                name = source.path.relative_to(real.root).as_posix()
                if k >= len(sources):
                    feats = feats + rng.normal(0, NOISE, feats.shape).astype(np.float32)
                    feats /= np.linalg.norm(feats, axis=0, keepdims=True)
                    name = f"synthetic/{k // per_folder:05d}/{k:05d}_{name}" if per_folder > 1 else f"synthetic/{k:05d}/{name}"
                batch.append(IndexEntry(name, 0, 0, "-", source.size, feats))
                source_of[name] = source.path
            writer.add(batch)
    for image in index.images():
        origin[image.id] = source_of[image.path.relative_to(index.root).as_posix()]
    return index, origin


def real_index(work: Path, folders: list[Path], size: int) -> CollectionIndex:
    """The files of ``folders`` hard-linked into ``work``/images and indexed for real at ``size`` into
    ``work``/real (kept from an earlier run with the same ``work``)."""
    images = work / "images"
    if not images.exists():
        images.mkdir(parents=True)
        for folder in folders:
            for source in folder.rglob("*"):
                if source.is_file():
                    os.link(source, images / source.name)
    real, _ = update_index(images, work / "real", size=size, show_progress=False)
    return real


def reference_search(index: CollectionIndex, origin: dict[int, Path], query: Path, box, matcher, shortlist: int):
    """The same search, but every candidate's features recomputed from its image file."""
    pixels = query_pixels(load_image(query), box, index.size)
    query_feats = matcher.features(pixels_to_tensor(pixels))[0].numpy()
    candidates = index.descriptor_index().search([pooled(query_feats)[None]], shortlist)[0]

    @lru_cache(maxsize=None)
    def features(i):
        return query_feats if i == -1 else matcher.features(model_input(origin[i], index.size)[0])[0].numpy()

    predictions = predict_pairs(matcher, features, [(-1, i) for i, _ in candidates], batch_size=BATCH, show_progress=False)
    return sorted(predictions, key=lambda p: -p.score_ab)


def re_ranking_floor(index: CollectionIndex, queries: list, shortlist: int, matcher, label: str) -> list:
    """The pair model's FLOPs in one box query's re-ranking (the first query; ``matcher`` runs its whole model in
    PyTorch, the tail included, so that every operation is counted) and the seconds they take at the machine's
    fp32 matmul rate."""
    from torch.utils.flop_counter import FlopCounterMode

    path, box = queries[0]
    with FlopCounterMode(display=False) as counter:
        search(index, path, matcher, box=box, shortlist=shortlist, keypoints=False)
    gflops = counter.get_total_flops() / 1e9
    rate = matmul_gflops()
    return [label, f"{gflops:.0f}", f"{rate:.0f}", f"{gflops / rate:.2f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_folder_arguments(parser)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--shortlist", type=int, default=100)
    parser.add_argument("--size", type=int, default=480)
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        real = real_index(work, args.images, args.size)
        start = time.perf_counter()
        index, origin = synthetic_index(real, work / "synthetic", args.count)
        build = time.perf_counter() - start
        feature_bytes = sum(p.stat().st_size for p in (index.path / "features").glob("*.f16"))
        print(f"synthetic index: {len(index)} images, {feature_bytes / 2**30:.2f} GiB of features, "
              f"{len(index.descriptor_index())} descriptor vectors, written in {build:.0f} s")

        queries = []
        for image in real.images()[:: max(1, len(real) // args.queries)][: args.queries]:
            w, h = image.size
            queries.append((image.path, (w // 3, h // 3, 2 * w // 3, 2 * h // 3)))

        matchers = [transformer_matcher(args.size)]
        counted = matchers[0]  # the model whose FLOPs the floor counts: every operation of it in PyTorch
        if getattr(matchers[0][0].model, "tail", None) is not None and matchers[0][0].model.tail.onnx is not None:
            torch_tail, label = transformer_matcher(args.size)
            torch_tail.model.tail.onnx = None  # the reference for the tail's runtime, timed in this run
            matchers.append((torch_tail, label + ", backbone tail on PyTorch"))
            counted = matchers[-1]
        matchers.append((segswap.load("correlation", size=args.size, backbone=index.backbone), "correlation (training-free)"))
        rows = []
        for matcher, label in matchers:
            search(index, queries[0][0], matcher, box=queries[0][1], shortlist=args.shortlist)  # warm-up
            ours, reference, found = [], [], 0
            for path, box in queries:
                start = time.perf_counter()
                result = search(index, path, matcher, box=box, shortlist=args.shortlist)
                ours.append(time.perf_counter() - start)
                found += origin[result.hits[0].image.id] == path
                start = time.perf_counter()
                reference_search(index, origin, path, box, matcher, args.shortlist)
                reference.append(time.perf_counter() - start)
            mine, theirs = statistics.median(ours), statistics.median(reference)
            rows.append([label, f"{mine:.2f}", f"{theirs:.2f}", f"{theirs / mine:.1f}×", f"{found}/{len(queries)}"])
        floor = re_ranking_floor(index, queries, args.shortlist, *counted)  # while the index's folder exists
    print(f"\n{len(queries)} box queries, shortlist {args.shortlist}, median seconds per query\n")
    print_table(["model", "search (cached features)", "reference (recompute features)", "speed-up",
                 "query's image (or a copy) at rank 1"], rows)
    print_table(["model", "GFLOP a query (re-ranking)", "fp32 matmul rate (GFLOP/s)", "seconds at that rate"], [floor],
                title="The floor: the re-ranking's FLOPs at the machine's matmul rate")


if __name__ == "__main__":
    run_and_record(main)
