"""Visual place recognition in the VPR-Bench layout: Recall@K of a global descriptor, then re-ranked.

Layout: ``ROOT/query/*``, ``ROOT/ref/*`` (index = position in name order) and ``ROOT/ground_truth_new.npy``,
an array of ``[query_index, [correct reference indices]]``. Every reference is ranked for every query by
the cosine similarity of global descriptors (the mean of the backbone's normalised features); the top
``shortlist`` are then re-ranked by the pair score (paper Eq. 3, query → reference), by ArtMiner's
training-free verification score (:func:`segswap.verify.ransac.verify`), by the homography inliers of
each keypoint matcher asked for and, as a baseline, by the number of SIFT + RANSAC inliers. References
beyond the shortlist keep their global order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import SegswapError
from ..grid import STRIDE
from ..io import load_image
from ..io.arrays import load_object_array
from ..io.paths import list_images
from ..models.outputs import similarity_score
from ..verify.ransac import verify
from . import baselines
from .keypoint_evidence import inlier_counts

RECALL_AT = (1, 5, 10)
SHORTLIST = 20


@dataclass(frozen=True)
class VprBenchmark:
    queries: list[Path]
    references: list[Path]
    truth: dict[int, set[int]]  # query index → indices of the references showing the same place


def read_ground_truth(path: Path) -> dict[int, set[int]]:
    """``ground_truth_new.npy`` → {query index: set of correct reference indices}."""
    rows = load_object_array(path)
    try:
        return {int(query): {int(r) for r in np.atleast_1d(refs)} for query, refs in rows}
    except (TypeError, ValueError):
        raise SegswapError(f"{path}: expected rows of [query_index, [reference indices]]") from None


def read_vpr_benchmark(root: Path) -> VprBenchmark:
    root = Path(root)
    folders = [root / "query", root / "ref"]
    truth_path = root / "ground_truth_new.npy"
    if not all(f.is_dir() for f in folders) or not truth_path.is_file():
        raise SegswapError(f"{root}: not a VPR-Bench folder (needs query/, ref/ and ground_truth_new.npy)")
    queries, references = (list_images(f, recursive=False) for f in folders)
    truth = read_ground_truth(truth_path)
    bad = [q for q, refs in truth.items() if not 0 <= q < len(queries) or any(not 0 <= r < len(references) for r in refs)]
    if bad:
        raise SegswapError(f"{truth_path}: indices out of range for {len(queries)} queries and "
                           f"{len(references)} references (query {bad[0]})")
    return VprBenchmark(queries, references, truth)


def recall_at(rankings: dict[int, list[int]], truth: dict[int, set[int]], ks=RECALL_AT) -> dict[int, float]:
    """Fraction of the queries with ground truth that have a correct reference among their first k."""
    queries = [q for q, refs in truth.items() if refs]
    if not queries:
        raise SegswapError("no query has a correct reference in the ground truth")
    return {k: float(np.mean([bool(set(rankings[q][:k]) & truth[q]) for q in queries])) for k in ks}


def first_correct_ranks(rankings: dict[int, list[int]], truth: dict[int, set[int]]) -> dict[int, int | None]:
    """Per query with ground truth, the 1-based rank of its first correct reference (None: not ranked at all).

    Kept so two models can be compared query by query (a paired test), not only by their recalls."""
    return {q: next((i + 1 for i, r in enumerate(rankings[q]) if r in refs), None)
            for q, refs in sorted(truth.items()) if refs}


def reranked(ranking: list[int], scores: list[float], shortlist: int) -> list[int]:
    """``ranking`` with its first ``shortlist`` entries reordered by ``scores``, best first (ties keep order)."""
    head = ranking[:shortlist]
    order = sorted(range(len(head)), key=lambda i: -scores[i])
    return [head[i] for i in order] + ranking[shortlist:]


def paired_recall_change(ranks_a: dict, ranks_b: dict, k: int = 1) -> dict:
    """Recall@k of a and of b, the queries found in the first k by b and not by a (``gained``) and the
    reverse (``lost``), and the exact two-sided McNemar p-value: how likely a split at least this uneven
    is if a and b are equally good."""
    from scipy.stats import binomtest

    if set(ranks_a) != set(ranks_b):
        raise SegswapError("the two results rank different queries")
    hit_a, hit_b = ({q: r is not None and r <= k for q, r in ranks.items()} for ranks in (ranks_a, ranks_b))
    gained = sorted(q for q in hit_a if hit_b[q] and not hit_a[q])
    lost = sorted(q for q in hit_a if hit_a[q] and not hit_b[q])
    discordant = len(gained) + len(lost)
    p_value = binomtest(len(gained), discordant, 0.5).pvalue if discordant else 1.0
    n = len(hit_a)
    return {"k": k, "queries": n, "recall_a": sum(hit_a.values()) / n, "recall_b": sum(hit_b.values()) / n,
            "gained": gained, "lost": lost, "p_value": float(p_value)}


def global_descriptor(features: torch.Tensor) -> torch.Tensor:
    """1×C×h×w normalised features → their normalised mean (C,)."""
    return torch.nn.functional.normalize(features.mean(dim=(2, 3))[0], dim=0)


def global_ranking(reference_descriptors: torch.Tensor, query_features: torch.Tensor) -> list[int]:
    """Every reference (rows of N×C global descriptors) by cosine similarity to the query, best first."""
    similarity = reference_descriptors @ global_descriptor(query_features)
    return torch.argsort(similarity, descending=True, stable=True).tolist()


def pair_scores(matcher, query_features: torch.Tensor, candidates: list[torch.Tensor]) -> list[float]:
    """Paper Eq. 3 with the query as a, for each candidate's feature map."""
    scores = []
    for features in candidates:
        out = matcher.predict(query_features, features)
        scores.append(float(similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], query_features, features)[0]))
    return scores


def artminer_score(query_features: torch.Tensor, target_features: torch.Tensor) -> float:
    """ArtMiner's verification score of a whole query image in a target (1×C×h×w maps each)."""
    target = target_features[0].numpy()
    return verify(query_features[0].numpy(), target, (target.shape[2] * STRIDE, target.shape[1] * STRIDE)).score


def search_thresholds(matcher):
    """(the index's keypoint matcher, the matched-fraction threshold, the inlier threshold) `segswap search`
    fuses with, or None where the weights or the keypoints are not calibrated or not installed."""
    from ..collection.search import calibrated_inlier_threshold, calibrated_threshold
    from ..keypoints import get_matcher, is_installed
    from ..shipped import INDEX_KEYPOINTS

    name, conf = INDEX_KEYPOINTS
    if not is_installed(name):
        return None
    keypointer = get_matcher(name, **conf)
    matched, inliers = calibrated_threshold(matcher), calibrated_inlier_threshold({"matcher": name, "conf": keypointer.conf})
    return None if matched is None or inliers is None else (keypointer, matched, inliers)


def evaluate_vpr(root: Path, matcher, shortlist: int = SHORTLIST, keypoints: tuple[str, ...] = (),
                 show_progress: bool = True) -> dict:
    """Recall@1/5/10 by global descriptor, then re-ranked by the pair score, by ArtMiner's verification, by
    each of the ``keypoints`` matchers' inliers and by SIFT inliers, and as `segswap search` ranks (the
    pair-score ranking's head by the fused score of the matched fraction and the index keypoints' inliers,
    where both are calibrated); ``first_correct_rank`` holds each query's rank of its first correct reference."""
    if shortlist < 1:
        raise SegswapError(f"--shortlist must be at least 1, got {shortlist}")
    bench = read_vpr_benchmark(root)
    features, sift = {}, {}
    for path in tqdm(bench.queries + bench.references, desc="vpr features", unit="image", disable=not show_progress):
        image = load_image(path)
        features[path] = matcher.features(matcher.prepare(image)[0])
        sift[path] = baselines.sift_features(image)
    refs = torch.stack([global_descriptor(features[p]) for p in bench.references])
    rankings = {"global": {}, "pair-score": {}, "artminer-ransac": {}, **{name: {} for name in keypoints}, "sift-ransac": {}}
    heads, scores = {}, {}
    for q in tqdm(sorted(bench.truth), desc="vpr re-rank", unit="query", disable=not show_progress):
        query = bench.queries[q]
        ranking = global_ranking(refs, features[query])
        head = [bench.references[r] for r in ranking[:shortlist]]
        rankings["global"][q] = ranking
        scores[q] = pair_scores(matcher, features[query], [features[p] for p in head])
        rankings["pair-score"][q] = reranked(ranking, scores[q], shortlist)
        rankings["artminer-ransac"][q] = reranked(ranking, [artminer_score(features[query], features[p]) for p in head],
                                                  shortlist)
        rankings["sift-ransac"][q] = reranked(ranking, [baselines.sift_inlier_count(sift[query], sift[p]) for p in head],
                                              shortlist)
        heads[q] = (query, head)
    pairs = [(query, p) for query, head in heads.values() for p in head]
    for name in keypoints:
        counts = iter(inlier_counts(name, pairs, show_progress, desc=f"vpr {name}").tolist())
        for q, (query, head) in heads.items():
            rankings[name][q] = reranked(rankings["global"][q], [next(counts) for _ in head], shortlist)
    fused = search_thresholds(matcher)
    if fused is not None:
        from ..collection.search import HEAD, fused_evidence

        keypointer, matched_threshold, inlier_threshold = fused
        counts = iter(inlier_counts(keypointer, pairs, show_progress, desc="vpr search keypoints").tolist())
        rankings["search"] = {}
        for q, (query, head) in heads.items():
            inliers = [next(counts) for _ in head]
            cells = float(np.prod(features[query].shape[-2:]))
            fused_scores = [fused_evidence(score / cells, matched_threshold, n, inlier_threshold)[0]
                            for score, n in zip(scores[q], inliers)]
            fused_of = dict(zip(rankings["global"][q][:shortlist], fused_scores))  # reference index → fused score
            by_pair = rankings["pair-score"][q]
            top = sorted(by_pair[:min(HEAD, shortlist)], key=lambda r: -fused_of[r])  # stable: ties keep pair order
            rankings["search"][q] = top + by_pair[len(top):]
    return {
        "root": str(root), "model": matcher.name, "backbone": matcher.backbone.name, "size": matcher.size,
        "trained": matcher.trained, "shortlist": shortlist, "keypoints": list(keypoints),
        "search_thresholds": None if fused is None else {"matched_fraction": fused[1], "inliers": fused[2]},
        "queries": sum(1 for refs in bench.truth.values() if refs), "references": len(bench.references),
        "recall": {name: recall_at(r, bench.truth) for name, r in rankings.items()},
        "first_correct_rank": {name: first_correct_ranks(r, bench.truth) for name, r in rankings.items()},
    }
