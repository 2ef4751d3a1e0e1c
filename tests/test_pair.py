from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import segswap
from segswap.errors import SegswapError, UntrainedModelError
from segswap.models.weights import save_weights
from segswap.models.correlation import cell_centres, soft_argmax_flows
from segswap.models.outputs import similarity_score
from segswap.pair import SEARCH_SCALES, search_views, unrotate_b

DATA = Path(segswap.__file__).parent / "data"


@pytest.fixture(scope="module")
def untrained():
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch:  # random weights even when trained ones ship
        patch.setattr("segswap.pair.shipped_weights_path", lambda name: None)
        return segswap.load("segswap", allow_untrained=True, size=160)


@pytest.fixture(scope="module")
def correlation():
    return segswap.load("correlation", size=224)


def _image(w, h, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def test_untrained_model_is_refused_unless_asked_for(monkeypatch):
    monkeypatch.setattr("segswap.pair.shipped_weights_path", lambda name: None)
    with pytest.raises(UntrainedModelError, match="no trained weights"):
        segswap.load()
    with pytest.raises(SegswapError, match="unknown pair model"):
        segswap.load("nope")


def test_result_shapes_and_ranges_for_unequal_sizes(untrained):
    a, b = _image(200, 120, 1), _image(90, 150, 2)
    r = untrained.match(a, b, scales=(1.0,))  # one view: the token grids at the input size
    assert r["trained"] is False and r["weights"] == "untrained"
    assert r["mask_a"].shape == (120, 200) and r["mask_b"].shape == (150, 90)
    ha, wa = r["mask_a_tokens"].shape
    hb, wb = r["mask_b_tokens"].shape
    assert (ha, wa) == (6, 10) and (hb, wb) == (10, 6)
    assert r["flow_ab"].shape == (ha, wa, 2) and r["flow_ba"].shape == (hb, wb, 2)
    for key in ("mask_a", "mask_b", "mask_a_tokens", "cycle_mask_a_tokens", "flow_ab", "flow_ba"):
        assert r[key].min() >= 0 and r[key].max() <= 1
    assert np.all(r["cycle_mask_a_tokens"] <= r["mask_a_tokens"] + 1e-6)
    c = untrained.match(a, b, min_confidence=0.0, scales=(1.0,))["correspondences"]
    assert c.shape == (ha * wa, 5)
    assert (c[:, 0] <= 200).all() and (c[:, 2] <= 90).all() and (c[:, 3] <= 150).all()
    assert np.all(np.diff(c[:, 4]) <= 0)  # best first


def test_flip_averaging_keeps_ranges(untrained):
    r = untrained.match(_image(160, 160, 3), _image(160, 160, 4), flip=True)
    assert 0 <= r["flow_ab"].min() and r["flow_ab"].max() <= 1


def test_batched_matching_equals_one_by_one(untrained):
    imgs = [_image(160, 96, s) for s in range(3)] + [_image(96, 160, 9)]
    pairs = [(imgs[0], imgs[1]), (imgs[1], imgs[2]), (imgs[0], imgs[3])]
    many = untrained.match_many(pairs, batch_size=2)
    for (a, b), r in zip(pairs, many):
        one = untrained.match(a, b, scales=(1.0,))  # match_many runs one view
        assert np.allclose(one["mask_a_tokens"], r["mask_a_tokens"], atol=1e-5)
        assert abs(one["score"] - r["score"]) < 1e-4


def test_correlation_model_finds_a_pasted_detail(correlation):
    scene = np.asarray(segswap.io.load_image(DATA / "box_in_scene.png"))
    box = scene[130:290, 120:300].copy()  # a detail of the scene, shown alone
    r = correlation.match(box, scene, min_confidence=0.3, prior=False)  # the model's own mask
    mask_b = r["mask_b"]
    inside = mask_b[130:290, 120:300].mean()
    outside = (mask_b.sum() - mask_b[130:290, 120:300].sum()) / (mask_b.size - 160 * 180)
    assert inside > 3 * outside
    c = r["correspondences"]
    assert len(c) > 10
    err = np.hypot(c[:, 0] + 120 - c[:, 2], c[:, 1] + 130 - c[:, 3])
    cell_b = scene.shape[1] / r["mask_b_tokens"].shape[1]
    assert np.median(err) < cell_b  # the typical match lands in the right cell


def test_unrotate_b_undoes_a_quarter_turn_of_the_image():
    h, w = 3, 5
    centres = cell_centres(h, w).reshape(h, w, 2)  # b's own cells, (x, y) in [0, 1]
    turned = torch.rot90(centres, 1, dims=(0, 1))  # what each cell of the turned b shows
    own = cell_centres(w, h).reshape(w, h, 2)  # the turned b's cells in its own frame
    out = {"mask_a": torch.zeros(1, w, h), "mask_b": torch.arange(float(w * h)).reshape(1, w, h),
           "flow_ab": own[None], "flow_ba": own[None]}
    back = unrotate_b(out, 1)
    assert torch.allclose(back["flow_ab"][0], turned, atol=1e-6)  # points in the turned frame → b's frame
    assert torch.equal(back["mask_b"][0], torch.rot90(out["mask_b"][0], -1))
    assert back["flow_ba"].shape == (1, h, w, 2)
    four = unrotate_b(out, 4)
    assert torch.allclose(four["flow_ab"], out["flow_ab"]) and torch.equal(four["mask_b"], out["mask_b"])


BOX, AROUND_BOX = (130, 290, 120, 300), (70, 350, 60, 410)


@pytest.mark.parametrize("turn_b, crop, scales, expected_scale", [
    (1, BOX, (1.0, 2.0), 2.0),  # the box alone: at each side's input size it is 2.8× larger in a than in b
    (0, AROUND_BOX, (0.5,), 0.5),  # one view, a enlarged: the coordinates still come back right
    (2, AROUND_BOX, (2.0,), 2.0),
])
def test_view_search_finds_a_turned_or_rescaled_detail(correlation, turn_b, crop, scales, expected_scale):
    scene = np.asarray(segswap.io.load_image(DATA / "box_in_scene.png"))
    y0, y1, x0, x1 = crop
    b = np.ascontiguousarray(np.rot90(scene, turn_b))
    r = correlation.match(scene[y0:y1, x0:x1].copy(), b, min_confidence=0.3, scales=scales, rotations=True)
    assert r["view"]["rotation_deg"] == (90 * (4 - turn_b)) % 360  # the turn that brings b upright
    assert r["view"]["scale"] == expected_scale and r["view"]["views_tried"] == 4 * len(scales)
    assert r["mask_b"].shape == b.shape[:2]
    c = r["correspondences"]
    assert len(c) > 10
    xs, ys = c[:, 0] + x0, c[:, 1] + y0  # in the upright scene
    h, w = scene.shape[:2]
    for _ in range(turn_b):  # where np.rot90 put them: one turn sends (x, y) to (y, w - 1 - x)
        xs, ys, h, w = ys, w - 1 - xs, w, h
    x_b, y_b = xs, ys
    err = np.hypot(x_b - c[:, 2], y_b - c[:, 3])
    assert np.median(err) < max(b.shape) / max(r["mask_b_tokens"].shape)  # within a cell of b


def test_search_views_put_the_plain_view_first_and_check_scales():
    assert search_views([2, 1, 0.5], False) == [(1.0, 0), (2.0, 0), (0.5, 0)]
    assert len(search_views([1], True)) == 4
    with pytest.raises(SegswapError, match="scales"):
        search_views([0], False)


def test_score_counts_each_target_cell_once():
    # Two query cells landing on one target cell score once: the best of them.
    mask_q = torch.ones(1, 1, 2)
    mask_t = torch.ones(1, 2, 2)
    flow = torch.tensor([[[[0.25, 0.25], [0.25, 0.25]]]])  # both onto target cell (0, 0)
    fq = torch.nn.functional.normalize(torch.tensor([[[[1.0, 0.6]], [[0.0, 0.8]]]]), dim=1)
    ft = torch.zeros(1, 2, 2, 2)
    ft[:, 0] = 1.0
    s = similarity_score(mask_q, mask_t, flow, fq, ft)
    assert torch.allclose(s, torch.tensor([1.0]))
    s_masked = similarity_score(mask_q * 0.5, mask_t, flow, fq, ft)
    assert torch.allclose(s_masked, torch.tensor([0.5]))


def test_identical_images_score_higher_than_unrelated(correlation):
    scene = segswap.io.load_image(DATA / "box_in_scene.png")
    other = _image(320, 240, 5)
    same = correlation.match(scene, scene)
    diff = correlation.match(scene, other)
    assert same["score"] > 3 * max(diff["score"], 1e-3)
    assert abs(same["score"] - same["score_ba"]) < 1e-3  # symmetric for a pair with itself


def test_weights_file_loads_as_matcher(tmp_path):
    model = segswap.models.SegSwapTransformer(input_dim=120, dim=32, ffn_dim=32, layers="ICI")
    save_weights(tmp_path / "w.safetensors", model, backbone="efficientnet-lite2", size=160)
    m = segswap.load(weights=tmp_path / "w.safetensors")
    assert m.trained and m.size == 160 and m.backbone.name == "efficientnet-lite2"
    with pytest.raises(SegswapError, match="trained on backbone"):
        segswap.load(weights=tmp_path / "w.safetensors", backbone="efficientnet-lite0")


def test_trained_weights_accept_inference_options_only(tmp_path, monkeypatch):
    model = segswap.models.SegSwapTransformer(input_dim=120, dim=32, ffn_dim=32, layers="ICI", flow_head="match")
    save_weights(tmp_path / "w.safetensors", model, backbone="efficientnet-lite2", size=160)
    assert segswap.load(weights=tmp_path / "w.safetensors").model.conf["eval_flow_radius"] == 1
    whole = segswap.load(weights=tmp_path / "w.safetensors", eval_flow_radius=None)
    assert whole.model.conf["eval_flow_radius"] is None
    fa = F.normalize(torch.randn(1, 120, 6, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    out = whole.predict(fa, fa.flip(-1))
    assert torch.allclose(out["flow_ab"], soft_argmax_flows(out["match_logits"], (6, 6), (6, 6))[0])
    with pytest.raises(SegswapError, match="fixed by the trained weights"):
        segswap.load(weights=tmp_path / "w.safetensors", dim=64)
    monkeypatch.setattr("segswap.pair.shipped_weights_path", lambda name: tmp_path / "w.safetensors")
    with pytest.raises(SegswapError, match="dim: fixed by the trained weights"):
        segswap.load(dim=64)  # the shipped weights, not "no trained weights are installed"
    assert segswap.load(dim=64, allow_untrained=True).weights == "untrained"

def test_the_cli_default_scales_are_the_search_scales():
    from segswap.cli.two_images import SCALES_OPTION_DEFAULT
    from segswap.cli.common import parse_scales
    from segswap.pair import SEARCH_SCALES
    assert parse_scales(SCALES_OPTION_DEFAULT) == SEARCH_SCALES


def test_flip_averaged_model_mirrors_back():
    """A model that only sees a's left half: averaged with its mirrored run, a's mask is the mean of
    the left half and its mirror image, and flows come back in a's own frame (x ↦ 1 − x undone)."""
    import torch

    from segswap.models.outputs import FlipAveraged

    class LeftHalf(torch.nn.Module):
        def forward(self, data):
            b, _, h, w = data["feats_a"].shape
            mask = torch.zeros(b, h, w)
            mask[..., : w // 2] = 1.0
            xs = (torch.arange(w) + 0.5) / w
            flow = torch.stack(torch.broadcast_tensors(xs[None, :], torch.full((h, 1), 0.5)), -1).expand(b, h, w, 2)
            return {"mask_a": mask, "mask_b": mask, "flow_ab": flow, "flow_ba": flow}

    feats = torch.randn(1, 4, 3, 4)
    out = FlipAveraged(LeftHalf())({"feats_a": feats, "feats_b": feats})
    assert torch.allclose(out["mask_a"], torch.full((1, 3, 4), 0.5))
    assert torch.allclose(out["flow_ab"], LeftHalf()({"feats_a": feats})["flow_ab"])  # the identity flow survives


def test_match_tries_the_same_views_as_the_command_by_default():
    """Item 6 of issue 21: the Python API tried one view where `segswap pair` tried five, and on the
    demo pair found nothing where the command found the box."""
    result = segswap.load().match(DATA / "box.png", DATA / "box_in_scene.png")
    assert result["view"]["views_tried"] == len(SEARCH_SCALES) and len(result["correspondences"]) > 20


def test_the_views_compute_each_distinct_image_once(correlation, monkeypatch):
    """The views below ×1 all show b as it is: b's features are computed once for them, and the
    chosen view is the one every view recomputed from scratch would give."""
    a, b = _image(224, 160, 1), _image(200, 200, 2)
    calls = []
    features = correlation.features
    monkeypatch.setattr(correlation, "features", lambda x: calls.append(tuple(x.shape[-2:])) or features(x))
    result = correlation.match(a, b, scales=SEARCH_SCALES)
    # a at ×1, ×1/0.7, ×2 and b at ×1, ×1.4, ×2: six distinct images for five views
    assert len(calls) == len(set(calls)) == 6
    monkeypatch.setattr(correlation, "features", features)
    alone = [correlation.match(a, b, scales=(s,)) for s in SEARCH_SCALES]
    best = max(alone, key=lambda r: r["view"]["confidence"])
    assert result["view"]["scale"] == best["view"]["scale"] and result["score"] == pytest.approx(best["score"])
