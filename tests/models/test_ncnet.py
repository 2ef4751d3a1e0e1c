import itertools

import numpy as np
import pytest
import torch

from segswap.models.correlation import cell_centres, soft_argmax_flows
from segswap.models.ncnet import Conv4d, NCNetMatcher
from segswap.train.recipes import get_recipe


def _naive_conv4d(x, conv):
    """Direct 4-D convolution with the weights of ``conv`` (zero padding, odd kernel)."""
    k = conv.kernel
    weight = torch.stack([s.weight for s in conv.slices], dim=2)  # out×in×k×k×k×k
    bias = conv.slices[0].bias
    b, c, *dims = x.shape
    padded = torch.nn.functional.pad(x, (k // 2,) * 8)
    out = torch.zeros(b, weight.shape[0], *dims)
    for pos in itertools.product(*(range(d) for d in dims)):
        window = padded[:, :, pos[0]:pos[0] + k, pos[1]:pos[1] + k, pos[2]:pos[2] + k, pos[3]:pos[3] + k]
        out[(slice(None), slice(None), *pos)] = torch.einsum("bcijkl,ocijkl->bo", window, weight) + bias
    return out


def test_conv4d_equals_a_direct_4d_convolution():
    torch.manual_seed(0)
    conv = Conv4d(2, 3, 3)
    x = torch.randn(1, 2, 4, 3, 5, 3)
    with torch.no_grad():
        assert torch.allclose(conv(x), _naive_conv4d(x, conv), atol=1e-5)


def _one_hot_features(cells, channels=32):
    """B×C×h×w features where cell n has the one-hot code ``cells[n]`` (L2 norm 1)."""
    h, w = cells.shape
    f = torch.zeros(1, channels, h, w)
    for y in range(h):
        for x in range(w):
            f[0, cells[y, x], y, x] = 1.0
    return f


def test_identity_consensus_gives_the_planted_matches_and_masks():
    # a's cells carry codes 0..11; b holds a's codes 0..5 at known places, the rest codes no one has.
    rng = np.random.default_rng(0)
    codes_a = np.arange(12).reshape(3, 4)
    free = iter(range(12, 32))
    places = rng.permutation(16)
    codes_b = np.array([next(free) for _ in range(16)]).reshape(4, 4)
    shared = {code: divmod(int(places[code]), 4) for code in range(6)}
    for code, (y, x) in shared.items():
        codes_b[y, x] = code
    model = NCNetMatcher(channels=[1], temperature=0.01)
    with torch.no_grad():  # consensus = ReLU(volume): the centre tap of a 3⁴ kernel, no bias
        for conv in model.consensus[0].slices:
            conv.weight.zero_()
        model.consensus[0].slices[1].weight[0, 0, 1, 1, 1] = 1.0
        model.consensus[0].slices[0].bias.zero_()
        out = model({"feats_a": _one_hot_features(codes_a), "feats_b": _one_hot_features(codes_b)})
    centres_b = cell_centres(4, 4).view(4, 4, 2)
    for code, (y, x) in shared.items():
        ya, xa = divmod(code, 4)
        assert torch.allclose(out["flow_ab"][0, ya, xa], centres_b[y, x], atol=1e-4)
        assert out["mask_a"][0, ya, xa] > 0.99 and out["mask_b"][0, y, x] > 0.99
    assert out["mask_a"][0].flatten()[6:].max() < 0.2  # codes 6..11 have no partner


def test_swapping_the_images_swaps_the_outputs():
    torch.manual_seed(0)
    model = NCNetMatcher().eval()
    fa = torch.nn.functional.normalize(torch.randn(1, 8, 3, 4), dim=1)
    fb = torch.nn.functional.normalize(torch.randn(1, 8, 4, 2), dim=1)
    with torch.no_grad():
        ab, ba = model({"feats_a": fa, "feats_b": fb}), model({"feats_a": fb, "feats_b": fa})
    assert torch.allclose(ab["mask_a"], ba["mask_b"], atol=1e-6)
    assert torch.allclose(ab["flow_ab"], ba["flow_ba"], atol=1e-6)


def test_flows_are_read_around_the_best_cell_in_eval_mode_and_over_the_image_in_training():
    torch.manual_seed(1)
    model = NCNetMatcher()
    fa = torch.nn.functional.normalize(torch.randn(1, 8, 4, 5), dim=1)
    fb = torch.nn.functional.normalize(torch.randn(1, 8, 5, 4), dim=1)
    with torch.no_grad():
        logits = model.filtered_scores(fa, fb) * model.log_scale.exp()
        for training, radius in ((True, None), (False, 1)):
            out = model.train(training)({"feats_a": fa, "feats_b": fb})
            flow_ab, flow_ba = soft_argmax_flows(logits, (4, 5), (5, 4), radius)
            assert torch.allclose(out["flow_ab"], flow_ab) and torch.allclose(out["flow_ba"], flow_ba)
    assert not torch.allclose(flow_ab, soft_argmax_flows(logits, (4, 5), (5, 4))[0])


def test_ncnet_recipe_builds_the_ncnet_model():
    recipe = get_recipe("ncnet")
    assert recipe["model"] == "ncnet" and set(recipe["model_conf"]) == {"channels", "kernel", "temperature"}
    with pytest.raises(Exception, match="unknown"):
        NCNetMatcher(dim=3)
