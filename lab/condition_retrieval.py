"""Whole-image retrieval across conditions (issue 23, item 3): which global descriptor shortlists the
right image when one side changes condition, and what re-ranking by the pair score adds.

    .venv/bin/python lab/condition_retrieval.py WORK [--vpr ../shared/data/eval/vpr_corridor] [--json FILE]

WORK is a `segswap eval conditions --work WORK` folder: its pairs (seed 201, held out) and their Lite2
feature caches are reused. Per condition, each pair's image a is a query and the images b of all the
condition's pairs are the database; a result is right when its b was made from a photo that a was made
from (the pasted object's or the background's, as `FeatureCache.shares_content` says). Every descriptor is
centred on its database's mean and L2-normalised, as the index does. Reported: R@1 and R@5 of each
descriptor, and R@1 after re-ranking its first ``SHORTLIST`` by the pair model's matched fraction (paper
Eq. 3 over the query's cells, what `segswap search` ranks by) and by the sum of the two ranks. With
``--vpr``, the same on Corridor (VPR-Bench layout; shortlist 20, as `segswap eval vpr`).

With ``--train-head PAIRS...`` (training folders with Lite2 caches, never the benchmark's seed) one more
candidate is trained first: a small aggregation head on Lite2 cells (a per-cell weight and a linear
projection to ``HEAD_DIM``, weighted mean, L2-normalised) learnt with a symmetric InfoNCE loss that pulls
image a of each pair towards its image b against the batch's other images b.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import segswap
from segswap.backbone.dinov2 import DinoV2Backbone
from segswap.backbone.objectness import get_prior
from segswap.collection.descriptor import DescriptorIndex, mean_descriptor, pooled, regional_descriptors
from segswap.evaluation.calibration import matched_fractions
from segswap.evaluation.vpr import read_vpr_benchmark, recall_at
from segswap.io import load_image, pixels_to_tensor, resize_for_model
from segswap.models.outputs import matched_fraction, similarity_score
from segswap.synth.cache import FeatureCache, cache_dir_for
from segswap.synth.reader import read_images

SHORTLIST = 10
VPR_SHORTLIST = 20
GEM_P = 3.0
HEAD_DIM = 128
HEAD_STEPS = 1500
HEAD_BATCH = 64
HEAD_TEMPERATURE = 0.07


class AggregationHead(torch.nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.weight = torch.nn.Conv2d(channels, 1, 1)
        self.project = torch.nn.Conv2d(channels, HEAD_DIM, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.weight(feats).flatten(2), dim=-1)  # B×1×hw
        v = (self.project(feats).flatten(2) * w).sum(-1)
        return torch.nn.functional.normalize(v, dim=-1)


def train_head(folders: list[Path], backbone: str, size: int) -> AggregationHead:
    cache = FeatureCache([cache_dir_for(f, backbone, size) for f in folders])
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    head = AggregationHead(cache.channels)
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
    for step in tqdm(range(HEAD_STEPS), desc="aggregation head", unit="step"):
        batch = cache.get(rng.choice(len(cache), HEAD_BATCH, replace=False), keys=("feats_a", "feats_b"))
        a, b = head(batch["feats_a"]), head(batch["feats_b"])
        logits = a @ b.T / HEAD_TEMPERATURE
        target = torch.arange(len(a))
        loss = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return head.eval()


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _gem(feats: np.ndarray) -> np.ndarray:
    x = np.clip(feats.reshape(feats.shape[0], -1), 1e-6, None)
    return _normalise((x ** GEM_P).mean(1) ** (1 / GEM_P))


class Describer:
    """Every candidate descriptor of one image, from its Lite2 feature map and its pixels."""

    def __init__(self, size: int, head: AggregationHead | None = None):
        self.size = size
        self.head = head
        self.dino9 = DinoV2Backbone(block=9)
        self.prior = get_prior()

    def __call__(self, lite2: np.ndarray, rgb: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            dino9 = self.dino9(pixels_to_tensor(resize_for_model(rgb, self.size)))[0].numpy()
        focus = self.prior(rgb, at_image_size=False)
        last = focus["tokens"].transpose(2, 0, 1)
        last = last / np.maximum(np.linalg.norm(last, axis=0, keepdims=True), 1e-12)
        head = {}
        if self.head is not None:
            with torch.inference_mode():
                head = {"lite2-head": self.head(torch.from_numpy(np.ascontiguousarray(lite2))[None].float())[0].numpy()}
        return {
            **head, "lite2-mean": pooled(lite2), "lite2-gem": _gem(lite2), "lite2-regional": regional_descriptors(lite2),
            "dinov2-b9-mean": pooled(dino9), "dinov2-b9-regional": regional_descriptors(dino9),
            "dinov2-last-mean": pooled(last), "dinov2-cls": _normalise(focus["cls"]),
        }


def rankings(queries: list[dict], database: list[dict], name: str) -> np.ndarray:
    """Q×N database order (best first) of each query by descriptor ``name``; regional descriptors are
    searched as the index searches them (the query's whole-image row against every window)."""
    if name.endswith("-regional"):
        rows = [d[name] for d in database]
        index = DescriptorIndex(mean_descriptor(rows, rows[0].shape[1]))
        for i, r in enumerate(rows):
            index.add(i, r)
        found = index.search([q[name][:1] for q in queries], len(database))
        return np.array([[i for i, _ in hits] for hits in found])
    base = np.stack([d[name] for d in database])
    centre = base.mean(0)
    base = _normalise(base - centre)
    query = _normalise(np.stack([q[name] for q in queries]) - centre)
    return np.argsort(-(query @ base.T), axis=1, kind="stable")


def _reranked(order: np.ndarray, pair_score, shortlist: int) -> tuple[list[int], list[int]]:
    """The order with its head re-ranked by the pair score alone, and by the sum of the two ranks."""
    head = list(order[:shortlist])
    scores = [pair_score(j) for j in head]
    by_pair = sorted(range(len(head)), key=lambda i: -scores[i])
    pair_rank = {i: r for r, i in enumerate(by_pair)}
    fused = sorted(range(len(head)), key=lambda i: (i + pair_rank[i], i))
    rest = list(order[shortlist:])
    return [head[i] for i in by_pair] + rest, [head[i] for i in fused] + rest


def condition_rows(work: Path, matcher, describer: Describer) -> dict:
    rows = {}
    for folder in sorted(p for p in work.iterdir() if (p / "manifest.jsonl").is_file()):
        cache = FeatureCache([cache_dir_for(folder, matcher.backbone.name, matcher.size)])
        n = len(cache)
        queries, database = [], []
        for i in tqdm(range(n), desc=f"{folder.name} descriptors", unit="pair"):
            feats = cache.get([i], keys=("feats_a", "feats_b"))
            a, b = read_images(cache.pair_dirs[i])
            queries.append(describer(feats["feats_a"][0].numpy(), a))
            database.append(describer(feats["feats_b"][0].numpy(), b))
        right = np.array([[cache.shares_content(i, j) for j in range(n)] for i in range(n)])
        scores = {}

        def pair_score(i, j):
            if (i, j) not in scores:
                scores[(i, j)] = float(matched_fractions(matcher, cache, [i], [j])[0])
            return scores[(i, j)]

        row = {}
        for name in queries[0]:
            order = rankings(queries, database, name)
            reranked = [_reranked(order[i], lambda j, i=i: pair_score(i, j), SHORTLIST) for i in range(n)]
            row[name] = {
                "R@1": float(np.mean([right[i, order[i, 0]] for i in range(n)])),
                "R@5": float(np.mean([right[i, order[i, :5]].any() for i in range(n)])),
                "R@1 pair-score": float(np.mean([right[i, reranked[i][0][0]] for i in range(n)])),
                "R@1 rank-sum": float(np.mean([right[i, reranked[i][1][0]] for i in range(n)])),
            }
        rows[folder.name] = row
        print(folder.name, json.dumps({k: v["R@1"] for k, v in row.items()}), flush=True)
    return rows


def vpr_rows(root: Path, matcher, describer: Describer) -> dict:
    bench = read_vpr_benchmark(root)
    described, lite2 = {}, {}
    for path in tqdm(bench.queries + bench.references, desc="corridor descriptors", unit="image"):
        rgb = load_image(path)
        with torch.inference_mode():
            lite2[path] = matcher.features(matcher.prepare(rgb)[0])
        described[path] = describer(lite2[path][0].numpy(), rgb)
    queries = sorted(q for q, refs in bench.truth.items() if refs)
    scores = {}

    def pair_score(q, r):
        if (q, r) not in scores:
            fa, fb = lite2[bench.queries[q]], lite2[bench.references[r]]
            out = matcher.predict(fa, fb)
            s = similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], fa, fb)
            scores[(q, r)] = float(matched_fraction(s, fa.shape[-2:])[0])
        return scores[(q, r)]

    row = {}
    for name in described[bench.queries[0]]:
        order = rankings([described[bench.queries[q]] for q in queries], [described[p] for p in bench.references], name)
        ranked = {q: order[k] for k, q in enumerate(queries)}
        reranked = {q: _reranked(ranked[q], lambda r, q=q: pair_score(q, r), VPR_SHORTLIST) for q in queries}
        row[name] = {"R@1": recall_at({q: list(ranked[q]) for q in queries}, bench.truth)[1],
                     "R@5": recall_at({q: list(ranked[q]) for q in queries}, bench.truth)[5],
                     "R@1 pair-score": recall_at({q: reranked[q][0] for q in queries}, bench.truth)[1],
                     "R@1 rank-sum": recall_at({q: reranked[q][1] for q in queries}, bench.truth)[1]}
    print("corridor", json.dumps({k: v["R@1"] for k, v in row.items()}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--vpr", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--train-head", type=Path, nargs="+", metavar="PAIRS")
    args = parser.parse_args()
    matcher = segswap.load(weights=args.weights)
    head = train_head(args.train_head, matcher.backbone.name, matcher.size) if args.train_head else None
    describer = Describer(matcher.size, head)
    result = {"conditions": condition_rows(args.work, matcher, describer)}
    if args.vpr:
        result["corridor"] = vpr_rows(args.vpr, matcher, describer)
    names = list(next(iter(result["conditions"].values())))
    conditions = [c for c in result["conditions"] if c != "none"]
    print("| descriptor | none R@1 | mean R@1, 10 conditions | + pair-score | + rank-sum | worst condition | Corridor R@1 | + pair-score | + rank-sum |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        per = {c: result["conditions"][c][name] for c in conditions}
        worst = min(per, key=lambda c: per[c]["R@1"])
        corridor = result.get("corridor", {}).get(name, {})
        print(f"| {name} | {result['conditions']['none'][name]['R@1']:.3f} | "
              f"{np.mean([v['R@1'] for v in per.values()]):.3f} | {np.mean([v['R@1 pair-score'] for v in per.values()]):.3f} | "
              f"{np.mean([v['R@1 rank-sum'] for v in per.values()]):.3f} | {worst} {per[worst]['R@1']:.3f} | "
              + " | ".join(f"{corridor[k]:.3f}" if k in corridor else "-" for k in ("R@1", "R@1 pair-score", "R@1 rank-sum"))
              + " |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
