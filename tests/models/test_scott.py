import pytest
import torch

from segswap.models.scott import EMPTY_LOGIT, PairPooling, ScottMatcher, foreground_cells
from segswap.train.losses import scott_loss

SMALL = {"input_dim": 8, "dim": 16, "stages": 2, "matcher_dim": 8, "pool": 4, "max_cells": 6}


@pytest.mark.parametrize("p,q", [(1, 1), (3, 50), (64, 2), (5, 5)])
def test_pair_pooling_gives_k_by_k_for_any_foreground_size(p, q):
    pooled = PairPooling(4)(torch.randn(p, 8), torch.randn(q, 8), torch.randn(1, p, q))
    assert pooled.shape == (18, 4, 4) and torch.isfinite(pooled).all()


def test_pair_pooling_of_an_empty_foreground_is_none():
    pooling = PairPooling(4)
    assert pooling(torch.zeros(0, 8), torch.randn(3, 8)) is None
    assert pooling(torch.randn(3, 8), torch.zeros(0, 8)) is None


def test_pair_pooling_weights_each_pair_by_cosine_similarity():
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # similar, orthogonal
    pooled = PairPooling(1)(a, b)[:, 0, 0]
    # max over pairs of S_ij·[a_i, b_j]: the similar pair gives [1, 0, 2, 0], the orthogonal one zeros;
    # then S itself (max 1)
    assert torch.allclose(pooled, torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0]))


def test_foreground_selection_keeps_the_most_confident_cells_in_raster_order():
    mask = torch.tensor([[0.9, 0.1, 0.6, 0.0], [0.7, 0.95, 0.2, 0.8], [0.0, 0.0, 0.0, 0.51]])
    assert foreground_cells(mask, alpha=0.5, max_cells=3).tolist() == [0, 5, 7]  # 0.9, 0.95, 0.8 in raster order
    assert len(foreground_cells(mask, alpha=0.99, max_cells=3)) == 0


def test_swapping_the_images_gives_the_same_probability_and_swapped_masks():
    torch.manual_seed(0)
    model = ScottMatcher(**SMALL, alpha=0.3).eval()
    a, b = torch.randn(2, 8, 5, 7), torch.randn(2, 8, 6, 4)  # different grids: different aspect ratios
    ab, ba = model({"feats_a": a, "feats_b": b}), model({"feats_a": b, "feats_b": a})
    assert not ab["empty"].any()
    assert torch.allclose(ab["match_prob"], ba["match_prob"], atol=1e-6)
    assert torch.allclose(ab["mask_a"], ba["mask_b"], atol=1e-6) and ab["mask_a"].shape == (2, 5, 7)


def test_an_empty_foreground_is_a_clear_no_match():
    model = ScottMatcher(**SMALL, alpha=1.0).eval()  # no probability exceeds 1: nothing is foreground
    out = model({"feats_a": torch.randn(3, 8, 4, 4), "feats_b": torch.randn(3, 8, 4, 4)})
    assert out["empty"].all()
    assert torch.equal(out["match_logit"], torch.full((3,), EMPTY_LOGIT)) and (out["match_prob"] < 1e-6).all()


def test_training_steps_lower_both_loss_terms_on_a_fixed_batch():
    torch.manual_seed(0)
    model = ScottMatcher(**SMALL, alpha=0.2)
    feats = torch.randn(4, 8, 4, 4)
    inputs = {"feats_a": feats, "feats_b": feats.flip(-1)}
    masks = torch.zeros(4, 4, 4)
    masks[:2, 1:3, 1:3] = 1  # two matching pairs, two non-matching (empty targets)
    target = {"mask_a": masks, "mask_b": masks.flip(-1)}
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        terms = scott_loss(model(inputs), target)
        first = first or {k: float(v.detach()) for k, v in terms.items()}
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
    last = scott_loss(model(inputs), target)
    assert float(last["seg"].detach()) < first["seg"] and float(last["match"].detach()) < first["match"]


def test_segmentation_is_learned_from_matching_pairs_only():
    model = ScottMatcher(**SMALL)
    out = model({"feats_a": torch.randn(2, 8, 4, 4), "feats_b": torch.randn(2, 8, 4, 4)})
    empty_targets = {"mask_a": torch.zeros(2, 4, 4), "mask_b": torch.zeros(2, 4, 4)}
    assert float(scott_loss(out, empty_targets)["seg"].detach()) == 0.0
