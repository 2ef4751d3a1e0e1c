import itertools

import pytest
import torch
import torch.nn.functional as F

from segswap.models import CorrelationMatcher, SegSwapTransformer
from segswap.models.layers import sine_position_encoding
from segswap.models.transformer import diagonal_consensus
from segswap.models.correlation import soft_argmax_flows
from segswap.models.correlation import cell_centres
from segswap.train.losses import segswap_loss


def _random_feats(b, c, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, c, h, w, generator=g), dim=1)


@pytest.mark.parametrize("model_cls, conf", [
    (SegSwapTransformer, {"input_dim": 32, "dim": 64}),
    (SegSwapTransformer, {"input_dim": 32, "dim": 64, "flow_head": "match"}),
    (SegSwapTransformer, {"input_dim": 32, "dim": 64, "flow_head": "match", "correlation_prior": True}),
    (SegSwapTransformer, {"input_dim": 32, "dim": 64, "flow_head": "match", "correlation_prior": True,
                          "consensus_radius": 1, "context_convs": 1}),
    (CorrelationMatcher, {}),
])
def test_outputs_shapes_and_ranges_for_unequal_sizes(model_cls, conf):
    model = model_cls(**conf).eval()
    fa, fb = _random_feats(2, 32, 7, 11, 0), _random_feats(2, 32, 9, 5, 1)
    out = model({"feats_a": fa, "feats_b": fb})
    assert out["mask_a"].shape == (2, 7, 11) and out["mask_b"].shape == (2, 9, 5)
    assert out["flow_ab"].shape == (2, 7, 11, 2) and out["flow_ba"].shape == (2, 9, 5, 2)
    for key in ("mask_a", "mask_b", "flow_ab", "flow_ba"):
        assert torch.isfinite(out[key]).all() and out[key].min() >= 0 and out[key].max() <= 1
    if conf.get("flow_head") == "match":  # the scores behind the flows, one per pair of cells
        assert out["match_logits"].shape == (2, 7 * 11, 9 * 5) and torch.isfinite(out["match_logits"]).all()


def test_transformer_rejects_unknown_options():
    with pytest.raises(ValueError):
        SegSwapTransformer(width=3)
    with pytest.raises(ValueError):
        SegSwapTransformer(layers="IXI")


@pytest.mark.parametrize("conf", [{}, {"correlation_prior": True, "consensus_radius": 1, "context_convs": 1}])
def test_swapping_the_inputs_swaps_the_outputs(conf):
    # Weights are shared across directions, so the model is equivariant to exchanging a and b.
    model = SegSwapTransformer(input_dim=16, dim=32, **conf).eval()
    fa, fb = _random_feats(1, 16, 6, 6, 2), _random_feats(1, 16, 5, 8, 3)
    ab = model({"feats_a": fa, "feats_b": fb})
    ba = model({"feats_a": fb, "feats_b": fa})
    assert torch.allclose(ab["mask_a"], ba["mask_b"], atol=1e-5)
    assert torch.allclose(ab["flow_ab"], ba["flow_ba"], atol=1e-5)


def test_windowed_soft_argmax_reads_the_peak_where_the_global_one_averages_two_modes():
    grid_a, grid_b = (1, 1), (5, 5)
    logits = torch.full((1, 1, 25), -30.0)
    logits[0, 0, 0] = 5.0  # cell (0, 0): the best match
    logits[0, 0, 1] = 4.0  # its neighbour (0, 1): inside a radius-1 window
    logits[0, 0, 24] = 4.9  # cell (4, 4): a far, almost as strong mode
    centres = cell_centres(*grid_b)
    p = logits[0, 0].softmax(0)
    global_ab, _ = soft_argmax_flows(logits, grid_a, grid_b)
    assert torch.allclose(global_ab[0, 0, 0], p @ centres, atol=1e-6)  # pulled towards the far corner
    local_ab, local_ba = soft_argmax_flows(logits, grid_a, grid_b, radius=1)
    near = torch.tensor([5.0, 4.0]).softmax(0)
    assert torch.allclose(local_ab[0, 0, 0], near @ centres[:2], atol=1e-6)  # only cells (0, 0) and (0, 1)
    assert local_ba.shape == (1, 5, 5, 2) and torch.allclose(local_ba, torch.full_like(local_ba, 0.5))


@pytest.mark.parametrize("grid_b, radius", [((7, 5), 1), ((3, 8), 2), ((1, 4), 1)])
def test_windowed_soft_argmax_is_the_softmax_over_the_cells_near_each_rows_best(grid_b, radius):
    h, w = grid_b
    torch.manual_seed(0)
    logits = 5 * torch.randn(2, 6, h * w)
    logits[0, 0, 0] = logits[0, 1, h * w - 1] = 100.0  # best cells in the corners: windows cut by the grid's edge
    flow_ab, _ = soft_argmax_flows(logits, (2, 3), grid_b, radius=radius)
    centres = cell_centres(h, w)
    for b in range(2):
        for n in range(6):
            best = int(logits[b, n].argmax())
            near = ((centres[:, 1] * h - 0.5 - best // w).abs() <= radius + 1e-4) & \
                   ((centres[:, 0] * w - 0.5 - best % w).abs() <= radius + 1e-4)
            expected = logits[b, n][near].softmax(0) @ centres[near]
            assert torch.allclose(flow_ab.reshape(2, 6, 2)[b, n], expected, atol=1e-6)


def test_transformer_decodes_flows_locally_in_eval_mode_only():
    model = SegSwapTransformer(input_dim=16, dim=32, flow_head="match", dropout=0.0)
    fa, fb = _random_feats(1, 16, 6, 6, 4), _random_feats(1, 16, 7, 5, 5)
    trained = model.train()({"feats_a": fa, "feats_b": fb})
    assert torch.allclose(trained["flow_ab"], soft_argmax_flows(trained["match_logits"], (6, 6), (7, 5))[0])
    model.eval()
    evaluated = model({"feats_a": fa, "feats_b": fb})
    flow_ab, _ = soft_argmax_flows(evaluated["match_logits"], (6, 6), (7, 5), radius=1)
    assert torch.allclose(evaluated["flow_ab"], flow_ab)
    global_model = SegSwapTransformer(input_dim=16, dim=32, flow_head="match", dropout=0.0, eval_flow_radius=None).eval()
    global_model.load_state_dict(model.state_dict())
    flow_global, _ = soft_argmax_flows(evaluated["match_logits"], (6, 6), (7, 5))
    assert torch.allclose(global_model({"feats_a": fa, "feats_b": fb})["flow_ab"], flow_global)
    assert not torch.allclose(flow_ab, flow_global)


@pytest.mark.parametrize("radius", [1, 2])
def test_diagonal_consensus_is_the_mean_over_cells_displaced_together(radius):
    grid_a, grid_b = (4, 5), (3, 6)
    sim = torch.randn(2, 20, 18, generator=torch.Generator().manual_seed(6))
    got = diagonal_consensus(sim, grid_a, grid_b, radius).view(2, *grid_a, *grid_b)
    volume = sim.view(2, *grid_a, *grid_b)
    for ya, xa, yb, xb in itertools.product(*map(range, grid_a + grid_b)):
        values = [volume[:, ya + dy, xa + dx, yb + dy, xb + dx]
                  for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
                  if 0 <= ya + dy < grid_a[0] and 0 <= xa + dx < grid_a[1] and 0 <= yb + dy < grid_b[0] and 0 <= xb + dx < grid_b[1]]
        assert torch.allclose(got[:, ya, xa, yb, xb], sum(values) / len(values), atol=1e-6)


def test_consensus_favours_a_shared_patch_over_a_lone_lookalike_cell():
    fa, fb = _random_feats(1, 512, 8, 8, 7), _random_feats(1, 512, 8, 8, 8)
    fb[:, :, 4:7, 1:4] = fa[:, :, 1:4, 3:6]  # a shared 3×3 patch
    fb[:, :, 1, 6] = fa[:, :, 6, 1]  # and a single cell that looks like another of a's cells
    sim = torch.einsum("bcn,bcm->bnm", fa.flatten(2), fb.flatten(2))
    patch = diagonal_consensus(sim, (8, 8), (8, 8), 1).view(8, 8, 8, 8)
    assert sim.view(8, 8, 8, 8)[6, 1, 1, 6] > 0.99 and sim.view(8, 8, 8, 8)[2, 4, 5, 2] > 0.99
    assert patch[2, 4, 5, 2] > 0.99 and patch[6, 1, 1, 6] < 0.3


def test_sine_encoding_distinguishes_positions_and_is_bounded():
    pos = sine_position_encoding(6, 9, 64)
    assert pos.shape == (54, 64) and pos.abs().max() <= 1
    assert torch.cdist(pos, pos).fill_diagonal_(1).min() > 1e-3


def test_correlation_matcher_finds_a_shared_patch():
    # 512 channels: unrelated random cells are then about as dissimilar as unrelated real ones.
    fa, fb = _random_feats(1, 512, 8, 8, 4), _random_feats(1, 512, 8, 8, 5)
    fb[:, :, 4:7, 1:4] = fa[:, :, 1:4, 3:6]  # the same 3×3 patch at another place
    out = CorrelationMatcher()({"feats_a": fa, "feats_b": fb})
    inside = out["mask_a"][0, 1:4, 3:6]
    outside = out["mask_a"][0].clone()
    outside[1:4, 3:6] = 0
    # the shared cells rank above every other; unrelated cells are low on average
    assert inside.min() > 0.5 and inside.min() > outside.max() and outside.mean() < 0.2
    # cell (row 1, col 3) of a lands at (row 4, col 1) of b: centre x = 1.5/8, y = 4.5/8
    assert torch.allclose(out["flow_ab"][0, 1, 3], torch.tensor([1.5 / 8, 4.5 / 8]), atol=0.02)


def _planted_pair(seed, h=8, w=8, c=32):
    """Feature maps of two images sharing a 3×4 patch at different places, with exact ground truth."""
    fa, fb = _random_feats(1, c, h, w, seed), _random_feats(1, c, h, w, seed + 100)
    (ra, ca), (rb, cb) = (1, 1), (4, 3)
    patch = fa[:, :, ra:ra + 3, ca:ca + 4]
    fb[:, :, rb:rb + 3, cb:cb + 4] = patch
    mask_a, mask_b = torch.zeros(1, h, w), torch.zeros(1, h, w)
    mask_a[:, ra:ra + 3, ca:ca + 4] = 1
    mask_b[:, rb:rb + 3, cb:cb + 4] = 1
    centres = cell_centres(h, w).view(h, w, 2)
    shift = torch.tensor([(cb - ca) / w, (rb - ra) / h])
    flow_ab = (centres + shift).clamp(0, 1)[None]
    flow_ba = (centres - shift).clamp(0, 1)[None]
    return {"feats_a": fa, "feats_b": fb}, {"mask_a": mask_a, "mask_b": mask_b, "flow_ab": flow_ab, "flow_ba": flow_ba}


@pytest.mark.parametrize("flow_head, prior", [("regress", False), ("match", False), ("match", True)])
def test_a_tiny_transformer_learns_a_planted_pair(flow_head, prior):
    """Forward pass + loss + optimiser plumbing learn: mask IoU > 0.9 and correspondence error < 1 cell."""
    torch.manual_seed(0)
    inputs, target = _planted_pair(7)
    model = SegSwapTransformer(input_dim=32, dim=64, ffn_dim=64, dropout=0.0, flow_head=flow_head, correlation_prior=prior)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(300):
        loss = segswap_loss(model(inputs), target)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(inputs)
    for side, flow in (("a", "flow_ab"), ("b", "flow_ba")):
        pred, gt = out[f"mask_{side}"] > 0.5, target[f"mask_{side}"] > 0.5
        iou = (pred & gt).sum() / (pred | gt).sum()
        assert iou > 0.9
        err_cells = ((out[flow] - target[flow]) * 8).norm(dim=-1)[gt]
        assert err_cells.max() < 1.0


def test_one_step_lowers_each_loss_term_on_a_fixed_batch():
    torch.manual_seed(1)
    inputs, target = _planted_pair(3)
    for term in ("mask", "transported", "corr"):
        model = SegSwapTransformer(input_dim=32, dim=64, ffn_dim=64, dropout=0.0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        only = {k: float(k == term) for k in ("mask", "transported", "corr")}
        before = segswap_loss(model(inputs), target, only)
        opt.zero_grad()
        before["total"].backward()
        opt.step()
        after = segswap_loss(model(inputs), target, only)
        assert after[term] < before[term]
