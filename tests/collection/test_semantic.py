"""Semantic commonness: parts found across a group carry their group-wide saliency into every image."""

import numpy as np

from segswap.collection.semantic import part_labels, semantic_commonness


def _tokens(layout: np.ndarray, rng) -> np.ndarray:
    """rows×cols×8 tokens: part k is a noisy copy of basis vector k."""
    tokens = np.eye(8, dtype=np.float32)[layout] + 0.05 * rng.standard_normal((*layout.shape, 8)).astype(np.float32)
    return tokens


def test_a_part_salient_across_the_group_is_foreground_where_the_prior_missed_it():
    rng = np.random.default_rng(0)
    layout = np.zeros((6, 6), int)
    layout[1:4, 1:4] = 1  # the object: part 1 on background part 0
    tokens = [_tokens(layout, rng) for _ in range(4)]
    salient = (layout == 1).astype(np.float32)
    saliency = [salient, salient, salient, np.zeros_like(salient)]  # the prior misses it in the last image
    common = semantic_commonness(tokens, saliency, parts=2)
    for maps in common:
        assert maps[layout == 1].min() > 0.7 and maps[layout == 0].max() < 0.05
    labels = part_labels(tokens, parts=2)
    assert all(len(np.unique(lab[layout == 1])) == 1 for lab in labels)
