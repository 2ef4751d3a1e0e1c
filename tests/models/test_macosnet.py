import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import segswap
from segswap.errors import SegswapError
from segswap.models.correlation import cell_centres
from segswap.models.macosnet import IDENTITY_AFFINE, MaCoSNet, apply_affine, tps_warp, transform_points
from segswap.train.losses import (cycle_consistency, foreground_matching, macosnet_loss, perceptual_contrast,
                                  task_consistency, transitivity_consistency, warp_regression)
from segswap.train.macosnet_training import (FeaturesOnly, MacosnetTraining, random_warps, triplet_partners,
                                             warped_features)
from segswap.train.recipes import get_recipe

SMALL = {"grid": 7, "regressor_channels": [8, 8], "regressor_kernels": [3, 3], "decoder_dim": 8, "input_dim": 16}


def _features(b, h, w, channels=16, seed=0):
    torch.manual_seed(seed)
    return F.normalize(torch.randn(b, channels, h, w), dim=1)


def _points(n=50, seed=0):
    return torch.rand(1, n, 2, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_identity_parameters_give_the_identity():
    points = _points()
    assert torch.allclose(apply_affine(IDENTITY_AFFINE[None], points), points)
    assert torch.allclose(tps_warp(points, torch.zeros(1, 9, 2)), points, atol=1e-5)
    model = MaCoSNet(**SMALL).eval()  # regressors start at zero: the warp is the identity
    with torch.no_grad():
        out = model({"feats_a": _features(1, 6, 5), "feats_b": _features(1, 4, 7, seed=1)})
    assert torch.allclose(out["flow_ab"][0], cell_centres(6, 5).view(6, 5, 2), atol=1e-5)
    assert torch.allclose(out["flow_ba"][0], cell_centres(4, 7).view(4, 7, 2), atol=1e-5)


def test_affine_maps_known_points_as_affine_grid_samples():
    theta = torch.tensor([[[0.5, 0.0, 0.25], [0.0, 2.0, -0.5]]])
    corners = torch.tensor([[[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]])
    assert torch.allclose(apply_affine(theta, corners), torch.tensor([[[-0.25, -2.5], [0.75, 1.5], [0.25, -0.5]]]))
    # The same convention as torch's sampling grid: the point p of the output reads the input at θ·p.
    grid = F.affine_grid(theta, [1, 1, 4, 4], align_corners=False).view(1, -1, 2)
    centres = (cell_centres(4, 4) * 2 - 1)[None]
    assert torch.allclose(grid, apply_affine(theta, centres), atol=1e-6)


def test_tps_moves_control_points_where_told_and_is_smooth_between():
    displacement = torch.zeros(1, 9, 2)
    displacement[0, 4] = torch.tensor([0.2, -0.1])  # the centre control point
    steps = torch.linspace(-1, 1, 3)
    control = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).reshape(1, 9, 2)
    assert torch.allclose(tps_warp(control, displacement), control + displacement, atol=1e-5)
    # a translation of every control point translates every point
    shift = torch.tensor([0.3, 0.1])
    points = _points()
    assert torch.allclose(tps_warp(points, shift.expand(1, 9, 2)), points + shift, atol=1e-5)
    # between control points the warp moves less than the moved point
    moved = tps_warp(torch.tensor([[[0.5, 0.5]]]), displacement) - torch.tensor([0.5, 0.5])
    assert 0 < moved.norm() < displacement[0, 4].norm()


def test_outputs_hold_the_pair_model_keys_and_shapes():
    model = MaCoSNet(**SMALL).eval()
    with torch.no_grad():
        out = model({"feats_a": _features(2, 6, 5), "feats_b": _features(2, 4, 7, seed=1)})
    assert out["mask_a"].shape == (2, 6, 5) and out["mask_b"].shape == (2, 4, 7)
    assert out["flow_ab"].shape == (2, 6, 5, 2) and out["flow_ba"].shape == (2, 4, 7, 2)
    assert out["affine_ab"].shape == (2, 2, 3) and out["tps_ba"].shape == (2, 9, 2)
    assert out["correlation"].shape == (2, 30, 28)
    assert ((out["mask_a"] > 0) & (out["mask_a"] < 1)).all()


def _perturbed_output(seed=0, b=3):
    """A small model whose regressors are moved off the identity, its output on a fixed batch."""
    torch.manual_seed(seed)
    model = MaCoSNet(**SMALL)
    with torch.no_grad():
        for regressor in (model.affine_regressor, model.tps_regressor):
            regressor.out.bias.normal_(0, 0.15)
    inputs = {"feats_a": _features(b, 6, 6, seed=seed), "feats_b": _features(b, 6, 6, seed=seed + 1)}
    return model, inputs


TERMS = {
    "matching": lambda out, inputs: foreground_matching(out, "ab", (6, 6), (6, 6)) + foreground_matching(out, "ba", (6, 6), (6, 6)),
    "cycle": lambda out, inputs: cycle_consistency(out),
    "transitivity": lambda out, inputs: transitivity_consistency(out, torch.tensor([[0, 1, 2]])),
    "contrast": lambda out, inputs: perceptual_contrast(out, inputs["feats_a"], inputs["feats_b"]),
    "task": lambda out, inputs: task_consistency(out),
    # row 0 a positive, rows 1–2 negatives
    "presence": lambda out, inputs: macosnet_loss(out, inputs, torch.zeros(0, 3, dtype=torch.long), 1,
                                                  {k: 0.0 for k in TERMS if k != "presence"})["presence"],
}


@pytest.mark.parametrize("term", sorted(TERMS))
def test_each_loss_term_decreases_on_a_fixed_batch(term):
    model, inputs = _perturbed_output()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = TERMS[term](model(inputs), inputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 1e-3, losses


def test_transitivity_is_zero_for_a_closing_loop_of_transformations():
    # T_AB a shift by +s, T_BC by +t, T_CA by −(s + t): the loop closes
    shifts = torch.tensor([[0.1, 0.0], [0.0, -0.2], [-0.1, 0.2]])
    affine = IDENTITY_AFFINE.repeat(3, 1, 1)
    affine[:, :, 2] = shifts
    out = {"affine_ab": affine, "tps_ab": torch.zeros(3, 9, 2)}
    assert float(transitivity_consistency(out, torch.tensor([[0, 1, 2]]))) < 1e-6
    assert float(transitivity_consistency(out, torch.tensor([[0, 0, 0]]))) > 0.1


def test_cycle_is_zero_when_t_ba_inverts_t_ab():
    theta = torch.tensor([[[1.2, 0.1, 0.1], [-0.1, 0.9, 0.0]]])
    inverse = torch.linalg.inv(torch.cat([theta[0], torch.tensor([[0.0, 0.0, 1.0]])]))[:2][None]
    out = {"affine_ab": theta, "affine_ba": inverse, "tps_ab": torch.zeros(1, 9, 2), "tps_ba": torch.zeros(1, 9, 2)}
    assert float(cycle_consistency(out)) < 1e-5
    points = _points()
    assert torch.allclose(transform_points(out, "ba", transform_points(out, "ab", points)), points, atol=1e-5)


class _FeaturesOnlyCache:
    """Stands in for a FeatureCache whose masks and flows must never be read."""

    def __init__(self, cache):
        self.cache = cache
        self.pair_dirs = cache.pair_dirs
        self.shares_content = cache.shares_content

    def get(self, indices, keys=("feats_a", "feats_b", "mask_a", "mask_b", "flow_ab", "flow_ba")):
        if set(keys) - {"feats_a", "feats_b"}:
            raise AssertionError(f"weak supervision read {sorted(set(keys) - {'feats_a', 'feats_b'})}")
        return self.cache.get(indices, keys=keys)


class _TinyCache:
    """Random features for n pairs whose meta.json say that pairs 0–3 show segment s0, 4–7 s1."""

    def __init__(self, root, n=8):
        self.pair_dirs = []
        for i in range(n):
            d = root / f"{i:06d}"
            d.mkdir()
            objects = [{"segment": f"s{i // 4}", "on_canvas": True}]
            (d / "meta.json").write_text(json.dumps({"a": {"objects": objects}, "b": {"objects": objects}}))
            self.pair_dirs.append(d)
        self.feats = _features(2 * n, 6, 6)

    def shares_content(self, i, j):
        return False

    def get(self, indices, keys):
        rows = torch.as_tensor(np.asarray(indices))
        return {k: self.feats[rows * 2 + (k == "feats_b")] for k in keys}


def test_weak_mode_never_reads_masks_or_flows(tmp_path):
    cache = _FeaturesOnlyCache(_TinyCache(tmp_path))
    recipe = get_recipe("macosnet-tiny")
    training = MacosnetTraining(recipe, cache, np.arange(8))
    assert set(training.partners[0]) == {1, 2, 3} and set(training.partners[5]) == {4, 6, 7}
    model = MaCoSNet(**{**recipe["model_conf"], "input_dim": 16})
    inputs, target = training.batch(np.random.default_rng(0), "main")
    terms = training.loss(model(inputs), target, "main")
    terms["total"].backward()
    assert set(terms) == {"matching", "cycle", "transitivity", "contrast", "task", "presence", "total"}
    # the guard itself refuses truth outright
    with pytest.raises(SegswapError, match="weak supervision reads no mask_a"):
        FeaturesOnly(cache).get([0], keys=("feats_a", "mask_a"))
    # full supervision is the one mode that reads the (A, B) pairs' truth
    with pytest.raises(AssertionError, match="read"):
        MacosnetTraining({**recipe, "supervision": "full"}, cache, np.arange(8)).batch(np.random.default_rng(0), "main")


def test_triplets_join_pairs_that_show_one_segment(tmp_path):
    cache = _TinyCache(tmp_path, n=5)  # pair 4 shows s1 alone: no partner
    partners = triplet_partners(cache, np.arange(5))
    assert sorted(partners) == [0, 1, 2, 3] and list(partners[0]) == [1, 2, 3]


def test_macosnet_loss_switches_terms_off():
    model, inputs = _perturbed_output()
    with torch.no_grad():
        terms = macosnet_loss(model(inputs), inputs, torch.tensor([[0, 1, 2]]), 3, {"cycle": 0.0, "contrast": 0.0})
    assert set(terms) == {"matching", "transitivity", "task", "presence", "total"}
    assert math.isclose(float(terms["total"]), float(terms["matching"] + terms["transitivity"] + terms["task"] + terms["presence"]), rel_tol=1e-5)


def test_shipped_weights_load_by_name_and_reproduce_their_model(tmp_path):
    from segswap.models.weights import load_weights, save_weights
    from segswap.shipped import shipped_weights_path

    path = shipped_weights_path("macosnet")
    if path is None:
        pytest.skip("no shipped MaCoSNet weights")
    matcher = segswap.load("macosnet")
    assert matcher.name == "macosnet" and matcher.weights == "macosnet.safetensors"
    model, config = load_weights(path)
    assert config["backbone"] == matcher.backbone.name
    feats = {"feats_a": _features(1, 20, 15, channels=model.conf["input_dim"]),
             "feats_b": _features(1, 15, 20, channels=model.conf["input_dim"], seed=1)}
    with torch.no_grad():
        expected = model(feats)
        got = matcher.predict(feats["feats_a"], feats["feats_b"])
    for key in ("mask_a", "mask_b", "flow_ab", "flow_ba", "affine_ab", "tps_ba"):
        assert torch.allclose(expected[key], got[key])
    # and a round trip through save_weights keeps every output
    save_weights(tmp_path / "again.safetensors", model, backbone=config["backbone"], size=config["size"])
    again, _ = load_weights(tmp_path / "again.safetensors")
    with torch.no_grad():
        assert torch.allclose(again(feats)["flow_ab"], expected["flow_ab"])


def test_foreground_matching_is_the_slides_score_with_a_gaussian_tolerance():
    from segswap.train.losses import MATCH_TEMPERATURE, MATCH_TOLERANCE_CELLS

    model, inputs = _perturbed_output()
    with torch.no_grad():
        out = model(inputs)
        centres = cell_centres(6, 6) * 2 - 1
        landed = transform_points(out, "ab", centres.expand(3, -1, -1))
        distance2 = (((landed[:, :, None] - centres) * 3) ** 2).sum(-1)  # 6 cells span 2 units
        score = (torch.exp(-distance2 / (2 * MATCH_TOLERANCE_CELLS ** 2))
                 * (out["correlation"] / MATCH_TEMPERATURE).softmax(dim=2)).sum(2)
        mask = out["mask_a"].flatten(1)
        expected = -(score * mask).mean()
        assert torch.allclose(foreground_matching(out, "ab", (6, 6), (6, 6)), expected, atol=1e-5)


def test_random_warps_are_seeded_and_warped_features_follow_them():
    first, again = random_warps(np.random.default_rng(3), 4, 3), random_warps(np.random.default_rng(3), 4, 3)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert first["affine_ab"].shape == (4, 2, 3) and first["tps_ab"].shape == (4, 9, 2)
    assert not torch.allclose(first["affine_ab"], IDENTITY_AFFINE.expand(4, -1, -1))
    feats = _features(2, 8, 8)
    identity = {"affine_ab": IDENTITY_AFFINE.repeat(2, 1, 1), "tps_ab": torch.zeros(2, 9, 2)}
    assert torch.allclose(warped_features(feats, identity), feats, atol=1e-5)
    # a shift by two cells to the right: cell (y, x) of the result holds the features of cell (y, x + 2)
    shifted = {**identity, "affine_ab": identity["affine_ab"].clone()}
    shifted["affine_ab"][:, 0, 2] = 2 * 2 / 8
    moved = warped_features(feats, shifted)
    assert torch.allclose(moved[..., :6], feats[..., 2:], atol=1e-5) and moved[..., 6:].abs().max() < 1e-6


def test_warp_regression_is_zero_at_the_truth_and_trains_the_regressors():
    warp = random_warps(np.random.default_rng(0), 3, 3)
    inverse_free = {"affine_ba": warp["affine_ab"], "tps_ba": warp["tps_ab"]}
    assert float(warp_regression({**inverse_free, "affine_ab": IDENTITY_AFFINE.repeat(3, 1, 1),
                                  "tps_ab": torch.zeros(3, 9, 2)}, warp)) > 0.05
    # T_BA = S exactly: the first half of the loss is 0
    points = torch.zeros(3, 1, 2)
    assert torch.allclose(transform_points(inverse_free, "ba", points), transform_points(warp, "ab", points))
    torch.manual_seed(0)
    model = MaCoSNet(**SMALL)
    feats = _features(3, 8, 8)
    inputs = {"feats_a": feats, "feats_b": warped_features(feats, warp)}
    optimizer = torch.optim.Adam([*model.affine_regressor.parameters(), *model.tps_regressor.parameters()], lr=3e-3)
    losses = []
    for _ in range(15):
        loss = warp_regression(model(inputs), warp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 1e-3, losses


def test_geometry_stage_comes_first_reads_features_only_and_trains_the_regressors_alone(tmp_path):
    cache = _FeaturesOnlyCache(_TinyCache(tmp_path))
    recipe = get_recipe("macosnet-tiny", geometry_steps=2)
    training = MacosnetTraining(recipe, cache, np.arange(8))
    assert [training.stage(step) for step in range(4)] == ["geometry", "geometry", "main", "main"]
    assert training.lr_scale("geometry", "decoder") == 0 and training.lr_scale("geometry", "regressors") == 1
    assert training.lr_scale("main", "regressors") == 1 and training.lr_scale("main", "decoder") == 1
    inputs, target = training.batch(np.random.default_rng(0), "geometry")
    assert inputs["feats_a"].shape == inputs["feats_b"].shape and set(target) == {"warp"}
    model = MaCoSNet(**{**recipe["model_conf"], "input_dim": 16})
    terms = training.loss(model(inputs), target, "geometry")
    assert set(terms) == {"warp", "total"}
    terms["total"].backward()
    assert model.decoder[0].weight.grad is None and model.affine_regressor.out.weight.grad.abs().sum() > 0
