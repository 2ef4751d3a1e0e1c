"""Discovery on 1,000 images: time, peak memory, planted patterns recovered, against running all pairs.

    .venv/bin/python benchmarks/discover_speed.py [--count 1000] [--patterns 50] [--copies 8]

The collection is synthetic, 640×480: cluttered backgrounds drawn with OpenCV (no two alike), and
``--patterns`` objects (elliptic patches cut from the shared photos) each pasted into ``--copies``
images at random places and scales; the other images hold no repeat. It is indexed at 480 px, then
``discover`` runs with the training-free correlation model, in both designs in the same run: the spectral
design (top-k 5) and the verified-region design (its default top-k, edges verified by the index's calibrated
keypoints, since the correlation model has no calibrated pair score). Reported:

* discovery time of each design, the regions design's as a ratio to the spectral design's, and the
  process's peak resident memory after each (indexing included);
* the time and peak resident memory of `segswap discover [--design regions]` run on the same index in a fresh
  process, as a user runs it after `segswap index` (GNU time's maximum resident set size), with the pair model
  of ``--command-model``: the correlation model (default) or the shipped SegSwap weights, the model
  `segswap discover` runs when none is named;
* patterns recovered: planted objects with a reported pattern holding at least half of their copies,
  its box on the object;
* reference, measured in the same run: the per-pair time on a sample of all-pairs candidates, times
  N(N−1)/2 — what the paper's all-pairs recipe would cost here;
* the SegSwap transformer's per-pair time (the default recipe's shape; untrained weights cost the same),
  times our number of pairs: the pair stage once trained weights ship.

Target: 1,000 images in ≤ 10 minutes on 2 cores, ≤ 4 GB.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, print_machine, print_table, run_and_record  # noqa: E402
from search_speed import transformer_matcher  # noqa: E402

import segswap  # noqa: E402
from segswap.collection.discover import discover, run_discovery  # noqa: E402
from segswap.collection.folder import list_images  # noqa: E402
from segswap.collection.predictions import predict_pairs  # noqa: E402
from segswap.collection.methods import DISCOVERY_TOP_K  # noqa: E402
from segswap.collection.update import update_index  # noqa: E402
from segswap.io import load_image  # noqa: E402

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train" / "photos"
WIDTH, HEIGHT = 640, 480


def background(rng: np.random.Generator) -> np.ndarray:
    low = rng.integers(0, 256, (HEIGHT // 40, WIDTH // 40, 3)).astype(np.uint8)
    image = cv2.resize(low, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
        if rng.random() < 0.5:
            cv2.ellipse(image, (x, y), (int(rng.integers(5, 80)), int(rng.integers(5, 80))), float(rng.uniform(0, 180)),
                        0, 360, colour, -1)
        else:
            cv2.line(image, (x, y), (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))), colour, int(rng.integers(1, 6)))
    return image


def objects(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` square patches (RGB) cut from the shared photos."""
    photos = [load_image(p) for p in list_images(PHOTOS)]
    patches = []
    for k in range(count):
        photo = photos[k % len(photos)]
        side = int(min(photo.shape[:2]) * rng.uniform(0.3, 0.5))
        y, x = int(rng.integers(0, photo.shape[0] - side)), int(rng.integers(0, photo.shape[1] - side))
        patches.append(np.ascontiguousarray(photo[y:y + side, x:x + side]))
    return patches


def make_collection(folder: Path, count: int, patterns: int, copies: int, seed: int = 0,
                    sides: tuple[int, int] = (110, 170)) -> dict[int, list[tuple[str, tuple]]]:
    """Write the images; return, per pattern, ``(file name, box)`` of its copies (each ``sides`` px square)."""
    rng = np.random.default_rng(seed)
    patches = objects(rng, patterns)
    holders = rng.permutation(count)[: patterns * copies].reshape(patterns, copies)
    pattern_of = {int(i): p for p in range(patterns) for i in holders[p]}
    truth: dict[int, list] = {p: [] for p in range(patterns)}
    folder.mkdir(parents=True)
    for i in range(count):
        image = background(rng)
        if i in pattern_of:
            patch = patches[pattern_of[i]]
            side = int(rng.integers(*sides))
            patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
            mask = np.zeros((side, side), np.uint8)
            cv2.ellipse(mask, (side // 2, side // 2), (side // 2 - 1, side // 2 - 1), 0, 0, 360, 1, -1)
            x, y = int(rng.integers(0, WIDTH - side)), int(rng.integers(0, HEIGHT - side))
            region = image[y:y + side, x:x + side]
            region[mask > 0] = patch[mask > 0]
            truth[pattern_of[i]].append((f"{i:05d}.jpg", (x, y, x + side, y + side)))
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return truth


def recovered(found, truth) -> int:
    count = 0
    patterns = found.clusters if hasattr(found, "clusters") else found.patterns
    for copies in truth.values():
        boxes = dict(copies)
        for cluster in patterns:
            hits = [m for m in cluster.images if m.image.path.name in boxes and _centre_inside(m.box, boxes[m.image.path.name])]
            if 2 * len(hits) >= len(copies):
                count += 1
                break
    return count


def _centre_inside(box, truth) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3]


def per_pair_seconds(matcher, index, pairs) -> float:
    start = time.perf_counter()
    predict_pairs(matcher, index.features, pairs, show_progress=False)
    return (time.perf_counter() - start) / len(pairs)


def command_run(index_dir: Path, design: str, top_k: int | None, model: str) -> tuple[float | None, float]:
    """`segswap discover` on ``index_dir`` in its own process, with ``model`` ("shipped": no --model, as a user
    runs it): (peak resident memory in GiB, or None without GNU time; seconds, process start included)."""
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    command = [str(Path(sys.executable).parent / "segswap"), "discover", "--index", str(index_dir), "--design", design,
               "--json", str(index_dir / f"{design}.json")]
    command += [] if model == "shipped" else ["--model", model]
    command += ["--top-k", str(top_k)] if top_k else []
    start = time.perf_counter()
    done = subprocess.run(([timer, "-f", "peak-kib %M"] if timer else []) + command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"segswap discover --design {design} failed:\n{done.stderr[-800:]}")
    if timer is None:
        return None, seconds
    kib = next(int(line.split()[1]) for line in reversed(done.stderr.splitlines()) if line.startswith("peak-kib"))
    return kib / 2**20, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--patterns", type=int, default=50)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--regions-top-k", type=int, help="the regions design's top-k (default: its default)")
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--command-model", choices=("correlation", "shipped"), default="correlation",
                        help="the pair model of the fresh-process `segswap discover` runs (shipped: the default weights)")
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        truth = make_collection(Path(tmp) / "images", args.count, args.patterns, args.copies)
        start = time.perf_counter()
        index, _ = update_index(Path(tmp) / "images", Path(tmp) / "idx", size=args.size, show_progress=False)
        indexing = time.perf_counter() - start

        matcher = segswap.load("correlation", size=args.size, backbone=index.backbone)
        start = time.perf_counter()
        found = discover(index, matcher, top_k=args.top_k, show_progress=False)
        discovery = time.perf_counter() - start
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        start = time.perf_counter()
        regions = run_discovery(index, matcher, design="regions", top_k=args.regions_top_k, show_progress=False)
        regions_seconds = time.perf_counter() - start
        regions_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

        rng = np.random.default_rng(1)
        ids = [im.id for im in index.images()]
        sample = [tuple(int(v) for v in rng.choice(ids, 2, replace=False)) for _ in range(200)]
        all_pairs = args.count * (args.count - 1) // 2
        reference = per_pair_seconds(matcher, index, sample) * all_pairs
        transformer, transformer_label = transformer_matcher(args.size)
        transformer_pair = per_pair_seconds(transformer, index, sample[:48])
        top_ks = {"spectral": args.top_k, "regions": args.regions_top_k or DISCOVERY_TOP_K}
        commands = {design: command_run(Path(tmp) / "idx", design, top_k, args.command_model)
                    for design, top_k in top_ks.items()}

    print(f"\n{args.count} images at {args.size} px, {args.patterns} planted patterns × {args.copies} copies; "
          f"indexing took {indexing:.0f} s ({args.count / indexing:.1f} images/s)\n")
    print_table(["run", "pairs", "seconds", "time vs reference", "patterns recovered", "peak memory"], [
        ["reference: all pairs (per-pair time measured on 200, × N(N−1)/2)", f"{all_pairs:,}", f"{reference:.0f}",
         "1.00×", "", ""],
        [f"discover, top-k {args.top_k} (correlation model)", f"{found.pairs:,}", f"{discovery:.0f}",
         f"{discovery / reference:.3f}×", f"{recovered(found, truth)}/{args.patterns}", f"{peak_gib:.2f} GiB"],
        [f"discover --design regions, top-k {top_ks['regions']} (correlation model, index keypoints)", f"{regions.pairs:,}", f"{regions_seconds:.0f}",
         f"{regions_seconds / reference:.3f}×", f"{recovered(regions, truth)}/{args.patterns}", f"{regions_peak:.2f} GiB"],
    ])
    print(f"\nregions design / spectral design, time: {regions_seconds / discovery:.2f}×; {regions.edges:,} verified edges, "
          f"{sum(p.kind == 'repeat' for p in regions.patterns)} repeated patterns, "
          f"{sum(p.kind != 'repeat' for p in regions.patterns)} near-duplicate groups")
    model = "shipped SegSwap weights" if args.command_model == "shipped" else "correlation model"
    print(f"\n`segswap discover` in a fresh process ({model}):")
    spectral_seconds, spectral_peak = commands["spectral"][1], commands["spectral"][0]
    print_table(["design", "top-k", "seconds", "time vs spectral", "peak memory", "memory vs spectral"], [
        [design, str(top_ks[design]), f"{seconds:.0f}",
         f"{seconds / spectral_seconds:.2f}×",
         f"{peak:.2f} GiB" if peak is not None else "not measured (no GNU time)",
         f"{peak / spectral_peak:.2f}×" if peak is not None and spectral_peak else ""]
        for design, (peak, seconds) in commands.items()])
    print(f"\ngraph: {found.nodes:,} nodes, {found.edges:,} edges, {len(found.clusters)} patterns reported")
    print(f"{transformer_label}: {transformer_pair * 1e3:.0f} ms per pair → pair stage for these {found.pairs:,} pairs "
          f"≈{transformer_pair * found.pairs:.0f} s")


if __name__ == "__main__":
    run_and_record(main)
