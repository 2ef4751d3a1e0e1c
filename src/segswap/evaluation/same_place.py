"""Same place or not: pair classifiers on query–reference pairs of a VPR-Bench folder.

SCOTT decides "same object" for a pair; on a place-recognition benchmark the question becomes "same
place". Each query is paired with every correct reference (positives) and with ``negatives`` wrong
ones: the half most similar to it by global descriptor (the hard cases a retrieval system would have
to reject) and the rest drawn at random (seeded). Classifiers:

- ``scott``: SCOTT's match probability at the threshold calibrated on held-out synthetic pairs;
- ``pair-score`` (the SegSwap pair model's Eq. 3 score, query → reference) and ``artminer-ransac``
  (ArtMiner's verification score) have no calibrated threshold: they are reported at the threshold
  with the best F1 on these very pairs (an optimistic, oracle figure; SCOTT's is reported that way too
  for comparison). Average precision needs no threshold and is the fair comparison.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from ..errors import SegswapError
from ..io import load_image
from ..models.outputs import similarity_score
from .metrics import best_f1_threshold, classification_scores
from .vpr import artminer_score, global_descriptor, read_vpr_benchmark

NEGATIVES_PER_QUERY = 6


def query_reference_pairs(bench, descriptors_q: torch.Tensor, descriptors_r: torch.Tensor, negatives: int,
                          seed: int = 0) -> tuple[list[tuple[int, int]], list[int]]:
    """(query, reference) pairs and their labels: all correct references, then ``negatives`` wrong ones
    per query, half by global-descriptor similarity (hardest first), half at random."""
    rng = np.random.default_rng(seed)
    pairs, labels = [], []
    for q in sorted(bench.truth):
        correct = bench.truth[q]
        if not correct:
            continue
        wrong = [r for r in torch.argsort(descriptors_r @ descriptors_q[q], descending=True).tolist() if r not in correct]
        hard = wrong[: negatives // 2]
        rest = [r for r in wrong if r not in hard]
        easy = rng.choice(rest, size=min(negatives - len(hard), len(rest)), replace=False).tolist() if rest else []
        for r in sorted(correct):
            pairs.append((q, r))
            labels.append(1)
        for r in hard + easy:
            pairs.append((q, int(r)))
            labels.append(0)
    if not pairs:
        raise SegswapError("no query has a correct reference in the ground truth")
    return pairs, labels


def evaluate_same_place(root, verifier, matcher, negatives: int = NEGATIVES_PER_QUERY, show_progress: bool = True) -> dict:
    """Precision, recall, F1 and AP of SCOTT, the pair score and ArtMiner on query–reference pairs."""
    if negatives < 1:
        raise SegswapError(f"--negatives must be at least 1, got {negatives}")
    bench = read_vpr_benchmark(root)
    images = bench.queries + bench.references
    scott_feats, pair_feats = {}, {}
    # get_backbone hands out one instance per backbone, so the same object at the same size means the
    # same features: compute them once.
    shared = verifier.backbone is matcher.backbone and verifier.size == matcher.size
    for path in tqdm(images, desc="same-place features", unit="image", disable=not show_progress):
        image = load_image(path)
        pair_feats[path] = matcher.features(matcher.prepare(image)[0])
        scott_feats[path] = pair_feats[path] if shared else verifier.features(image)
    descriptors_q = torch.stack([global_descriptor(pair_feats[p]) for p in bench.queries])
    descriptors_r = torch.stack([global_descriptor(pair_feats[p]) for p in bench.references])
    pairs, labels = query_reference_pairs(bench, descriptors_q, descriptors_r, negatives)
    scores = {"scott": [], "pair-score": [], "artminer-ransac": []}
    for q, r in tqdm(pairs, desc="same-place pairs", unit="pair", disable=not show_progress):
        query, ref = bench.queries[q], bench.references[r]
        scores["scott"].append(verifier.verify_features(scott_feats[query], scott_feats[ref])["probability"])
        out = matcher.predict(pair_feats[query], pair_feats[ref])
        scores["pair-score"].append(float(similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"],
                                                           pair_feats[query], pair_feats[ref])[0]))
        scores["artminer-ransac"].append(artminer_score(pair_feats[query], pair_feats[ref]))
    classifiers = {"scott": {"threshold_kind": "synthetic calibration",
                             **classification_scores(scores["scott"], labels, verifier.threshold)}}
    for name, values in scores.items():
        classifiers["scott (oracle threshold)" if name == "scott" else name] = {
            "threshold_kind": "best F1 on these pairs",
            **classification_scores(values, labels, best_f1_threshold(values, labels))}
    return {"root": str(root), "pairs": len(pairs), "positives": int(sum(labels)), "negatives_per_query": negatives,
            "scott_weights": verifier.weights, "pair_model": matcher.name, "pair_weights": matcher.weights,
            "classifiers": classifiers}
