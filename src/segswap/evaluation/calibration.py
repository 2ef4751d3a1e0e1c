"""Calibrating `segswap search`'s and `segswap verify`'s "match / no match" on held-out synthetic pairs.

The statistic is the **matched fraction** of the query: Eq. 3's score (query cells matched,
weighted by both masks and the features' cosine) over the query's number of cells. Dividing by the
query's cells makes it independent of the index's input size and the query's shape, and gives a
detail query (``--box``) the same scale as a whole image.

Positives are the pairs of `segswap synth` folders made with other seeds than the training pairs (an
object copied into two scenes); negatives are as many image a of one pair with image b of another,
half of them showing different objects of the same class. The threshold is the lowest at which the
"match" call reaches ``target_precision`` on these pairs: a user is told "match" when it is likely,
and a weak copy is left to the ranking.

`segswap verify` is calibrated the same way (:func:`calibrate_verify`), on pairs that cross a condition
(`segswap synth --conditions`), for each of its verdicts: the pair score over `segswap pair`'s views, the
keypoint matcher's homography inliers, SCOTT's match probability, and the fused verdict, whose two
thresholds (inliers n, pair score s) are chosen together (:func:`fused_operating_point`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..backbone import DEFAULT_BACKBONE
from ..errors import SegswapError
from ..io.files import write_bytes_atomic
from ..models import INFERENCE_OPTIONS
from ..models.outputs import matched_fraction, similarity_score
from ..synth.cache import FeatureCache, build_cache
from ..synth.reader import pairs_size
from ..synth.negatives import object_classes, random_negatives, same_class_negatives

#: The precision the "match" call must reach on the held-out pairs.
TARGET_PRECISION = 0.95
BATCH = 16


def calibrate_search(pairs_dirs, matcher, *, target_precision: float = TARGET_PRECISION, seed: int = 0,
                     show_progress: bool = True) -> dict:
    """The threshold on the matched fraction at which "match" reaches ``target_precision`` on the
    pairs of ``pairs_dirs`` (made at the matcher's size), with the precision, recall and average
    precision there. Raises :class:`SegswapError` if no threshold reaches it."""
    if matcher.weights_sha256 is None:
        raise SegswapError(f"the {matcher.name!r} model has no weights file to calibrate; pass --weights")
    point = _calibrate(pairs_dirs, matcher, matched_fractions, target_precision, seed, show_progress)
    return {
        "model": matcher.name, "weights": matcher.weights, "weights_sha256": matcher.weights_sha256,
        "inference": {key: matcher.model.conf.get(key) for key in sorted(INFERENCE_OPTIONS)},
        "statistic": "matched fraction: Eq. 3 score / query cells", **point,
        "pairs": [Path(p).name for p in pairs_dirs], "size": matcher.size, "seed": seed,
    }


def calibrate_search_keypoints(pairs_dirs, keypointer, *, target_precision: float = TARGET_PRECISION, seed: int = 0,
                               show_progress: bool = True) -> dict:
    """The homography inliers of an index's keypoints (``keypointer``: the matcher of
    :data:`~segswap.shipped.INDEX_KEYPOINTS`) at which they alone reach ``target_precision`` on the pairs of
    ``pairs_dirs``, against the same negatives as :func:`calibrate_search`; `segswap search` fuses them with
    the matched fraction."""
    from .keypoint_evidence import inlier_counts

    def scores(_, cache, a_indices, b_indices):
        return inlier_counts(keypointer, [(cache.pair_dirs[int(i)] / "a.jpg", cache.pair_dirs[int(j)] / "b.jpg")
                                          for i, j in zip(a_indices, b_indices)], show_progress)

    point = _calibrate(pairs_dirs, keypointer, scores, target_precision, seed, show_progress)
    return {"model": "keypoints", "weights": None, "weights_sha256": None, "keypoints": keypointer.name,
            "keypoint_conf": dict(sorted(keypointer.conf.items())), "statistic": "homography inliers of the index's keypoints",
            **point, "pairs": [Path(p).name for p in pairs_dirs], "size": pairs_size(pairs_dirs), "seed": seed}


def calibrate_verify(pairs_dirs, verifier, *, target_precision: float = TARGET_PRECISION, seed: int = 0,
                     show_progress: bool = True) -> dict:
    """The score from which `segswap verify` says "match" (a :class:`~segswap.verify.same_object.Verifier`'s
    SCOTT probability, or a :class:`~segswap.verify.same_object.PairScoreVerifier`'s pair score): the
    lowest at which the call reaches ``target_precision`` on the pairs of ``pairs_dirs`` (made at the
    verifier's size, crossing conditions) against as many non-matching pairs, half of them showing
    different objects of a common class (hard negatives). Raises :class:`SegswapError` if no threshold
    reaches it."""
    from ..verify.same_object import STATISTICS, _conf_record

    by = verifier.by
    if by == "fused":
        point = _calibrate(pairs_dirs, verifier, functools.partial(verdict_evidence, show_progress=show_progress),
                           target_precision, seed, show_progress, fused_operating_point)
    else:
        point = _calibrate(pairs_dirs, verifier, functools.partial(verdict_scores, show_progress=show_progress),
                           target_precision, seed, show_progress)
    keypoints = getattr(verifier, "keypoints", None)
    return {
        "model": {"scott": "scott", "keypoints": "keypoints"}.get(by, "segswap"), "by": by, "weights": verifier.weights,
        "weights_sha256": verifier.weights_sha256, "statistic": STATISTICS[by],
        **({"scales": list(verifier.scales)} if by in ("pair-score", "fused") else {}),
        **({"keypoints": keypoints.name, "keypoint_conf": _conf_record(keypoints)} if keypoints is not None else {}),
        "rule": f"lowest threshold with precision >= {target_precision} on positives vs as many negatives, "
                "half same-class" + ("; (n, s) maximising recall there, ties to the larger n" if by == "fused" else ""),
        **point, "conditions": _conditions_of(pairs_dirs), "pairs": [Path(p).name for p in pairs_dirs],
        "size": verifier.size, "seed": seed,
    }


def _calibrate(pairs_dirs, model, scores, target_precision: float, seed: int, show_progress: bool,
               choose=None) -> dict:
    """The operating point (``choose(positives, negatives, target_precision)``, by default
    :func:`operating_point`) of ``scores(model, cache, a_indices, b_indices)`` on the positives of
    ``pairs_dirs`` (cached at ``model``'s backbone and size, or the shipped one's for a verdict without a
    backbone) against :func:`negative_pairs`, with counts."""
    if not 0 < target_precision < 1:
        raise SegswapError(f"--precision must be between 0 and 1, not {target_precision}")
    # The cache gives the negatives (which pairs share a photo, which objects share a class); a verdict
    # without a backbone of its own (keypoints) caches the default one's features at the pairs' size.
    extractor = getattr(model, "backbone", None)
    backbone, size = (extractor.name, model.size) if extractor is not None else (DEFAULT_BACKBONE, pairs_size(pairs_dirs))
    cache = FeatureCache([build_cache(Path(p), backbone, size, show_progress=show_progress) for p in pairs_dirs])
    indices = np.arange(len(cache))
    negatives, hard = negative_pairs(cache, seed)
    positives = scores(model, cache, indices, indices)
    unrelated = scores(model, cache, negatives[:, 0], negatives[:, 1])
    return {**(choose or operating_point)(positives, unrelated, target_precision), "positives": int(len(indices)),
            "negatives": int(len(negatives)), "same_class_negatives": int(len(hard))}


def fused_operating_point(positives: dict, negatives: dict, target_precision: float, max_inliers: int = 200) -> dict:
    """The thresholds (n inliers, s pair score) of the fused verdict "inliers ≥ n or pair score ≥ s" with the
    highest recall whose precision reaches ``target_precision`` (ties: the larger n), from the evidence
    (``inliers`` and ``pair_score`` arrays) of positive and negative pairs; with the precision and recall
    there and the average precision of the fused score max(inliers / n, score / s)."""
    from sklearn.metrics import average_precision_score

    inliers = np.r_[positives["inliers"], negatives["inliers"]].astype(float)
    scores = np.r_[positives["pair_score"], negatives["pair_score"]].astype(float)
    labels = np.r_[np.ones(len(positives["inliers"])), np.zeros(len(negatives["inliers"]))].astype(bool)
    order = np.argsort(-scores, kind="stable")
    best = None
    for n in range(1, max_inliers + 1):
        by_keypoints = inliers >= n
        # Lowering s adds pairs in order of decreasing pair score: cumulative counts give every s at once.
        extra = ~by_keypoints[order]
        said_pos = np.sum(by_keypoints & labels) + np.cumsum(extra & labels[order])
        said_all = np.sum(by_keypoints) + np.cumsum(extra)
        candidates = [(np.sum(by_keypoints & labels), np.sum(by_keypoints), np.inf)]
        # only the last of a run of equal scores is a threshold that can be set
        last = np.r_[scores[order][1:] != scores[order][:-1], True]
        candidates += list(zip(said_pos[last], said_all[last], scores[order][last]))
        for positives_said, said, s in candidates:
            if said == 0 or positives_said / said < target_precision:
                continue
            key = (positives_said, n)
            if best is None or key > best[0]:
                best = (key, n, float(s), positives_said / said)
    if best is None:
        raise SegswapError(f"no thresholds reach precision {target_precision} on these pairs")
    (positives_said, _), n, s, precision = best
    fused = np.maximum(inliers / n, scores / s if np.isfinite(s) else 0.0)
    return {"inlier_threshold": int(n), "pair_score_threshold": s, "threshold": 1.0, "target_precision": target_precision,
            "precision": float(precision), "recall": float(positives_said / labels.sum()),
            "average_precision": float(average_precision_score(labels, fused))}


def negative_pairs(cache: FeatureCache, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """As many non-matching pairs (image a of pair i, image b of pair j) as the cache has pairs, half
    (where the pool allows) different objects of a common class; and those hard ones alone."""
    indices = np.arange(len(cache))
    rng = np.random.default_rng([seed, 777])
    hard = same_class_negatives(rng, object_classes(cache, indices), len(indices) // 2, cache)
    return np.concatenate([hard, random_negatives(rng, indices, len(indices) - len(hard), cache)]), hard


def operating_point(positives: np.ndarray, negatives: np.ndarray, target_precision: float) -> dict:
    """The lowest threshold on the scores at which "match" (score ≥ threshold) reaches
    ``target_precision``, with the precision and recall there and the average precision overall."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    scores = np.r_[positives, negatives]
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    reached = np.nonzero(precision[:-1] >= target_precision)[0]
    if not len(reached):
        raise SegswapError(f"no threshold reaches precision {target_precision} on these pairs")
    k = int(reached[0])
    return {"threshold": float(thresholds[k]), "target_precision": target_precision, "precision": float(precision[k]),
            "recall": float(recall[k]), "average_precision": float(average_precision_score(labels, scores))}


def _conditions_of(pairs_dirs) -> list[str]:
    """The conditions the synth folders were made with (from their config.json)."""
    names = set()
    for folder in pairs_dirs:
        config = json.loads((Path(folder) / "config.json").read_text())
        names |= set(config["settings"].get("conditions", []))
    return sorted(names)


def match_probabilities(verifier, cache: FeatureCache, a_indices, b_indices) -> np.ndarray:
    """SCOTT's match probability for image a of pair ``a_indices[k]`` against image b of pair ``b_indices[k]``."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(a_indices), BATCH):
            feats_a = torch.as_tensor(cache.get(a_indices[start:start + BATCH], keys=("feats_a",))["feats_a"]).float()
            feats_b = torch.as_tensor(cache.get(b_indices[start:start + BATCH], keys=("feats_b",))["feats_b"]).float()
            out += verifier.model({"feats_a": feats_a, "feats_b": feats_b})["match_prob"].tolist()
    return np.asarray(out)


def verdict_scores(verifier, cache: FeatureCache, a_indices, b_indices, show_progress: bool = True) -> np.ndarray:
    """The score a `segswap verify` verifier decides by, for image a of pair ``a_indices[k]`` against image b
    of pair ``b_indices[k]``: SCOTT's probability (:func:`match_probabilities`, from cached features), else
    from the verdict's evidence on the images: the pair score, the inliers, or the fused score."""
    if verifier.by == "scott":
        return match_probabilities(verifier, cache, a_indices, b_indices)
    evidence = verdict_evidence(verifier, cache, a_indices, b_indices, show_progress)
    if verifier.by == "fused":
        return np.asarray([verifier.fused({key: values[k] for key, values in evidence.items()})
                           for k in range(len(a_indices))])
    return evidence["pair_score" if verifier.by == "pair-score" else "inliers"]


def verdict_evidence(verifier, cache: FeatureCache, a_indices, b_indices, show_progress: bool = True) -> dict:
    """A verifier's evidence (:meth:`evidence`: arrays of ``pair_score``, ``inliers``, ...) of image a of pair
    ``a_indices[k]`` against image b of pair ``b_indices[k]``, read from the pair folders (the views and the
    keypoints need the images, not cached features)."""
    from tqdm import tqdm

    pairs = list(zip(a_indices, b_indices))
    rows = [verifier.evidence(cache.pair_dirs[int(i)] / "a.jpg", cache.pair_dirs[int(j)] / "b.jpg")
            for i, j in tqdm(pairs, desc="pairs", unit="pair", disable=not show_progress)]
    keys = rows[0].keys() if rows else ()
    return {key: np.asarray([row[key] for row in rows], dtype=float) for key in keys}


def matched_fractions(matcher, cache: FeatureCache, a_indices, b_indices) -> np.ndarray:
    """Matched fraction of image a of pair ``a_indices[k]`` against image b of pair ``b_indices[k]``."""
    import torch

    out = []
    for start in range(0, len(a_indices), BATCH):
        feats_a = torch.as_tensor(cache.get(a_indices[start:start + BATCH], keys=("feats_a",))["feats_a"]).float()
        feats_b = torch.as_tensor(cache.get(b_indices[start:start + BATCH], keys=("feats_b",))["feats_b"]).float()
        pred = matcher.predict(feats_a, feats_b)
        score = similarity_score(pred["mask_a"], pred["mask_b"], pred["flow_ab"], feats_a, feats_b)
        out += matched_fraction(score, feats_a.shape[-2:]).tolist()
    return np.asarray(out)


def add_calibration(path, record: dict) -> None:
    """Add ``record`` to the calibration file at ``path`` (replacing one for the same weights, input size
    and inference options), written atomically."""
    path = Path(path)
    records = json.loads(path.read_text()) if path.is_file() else []
    key = lambda r: (r["weights_sha256"], r.get("inference"), r.get("size"), r.get("statistic"),  # noqa: E731
                     r.get("keypoints"), json.dumps(r.get("keypoint_conf"), sort_keys=True))
    records = [r for r in records if key(r) != key(record)]
    write_bytes_atomic(path, (json.dumps(records + [record], indent=1) + "\n").encode())
