"""segswap.models.tail: Lite2's last blocks fine-tuned inside the transformer."""

import pytest
import torch
import torch.nn.functional as F

from segswap.backbone import get_backbone
from segswap.models import SegSwapTransformer
from segswap.io import load_image, pixels_to_tensor, resize_for_model
from segswap.models.tail import BackboneTail, tail_input_backbone


@pytest.fixture(scope="module")
def photo():
    from importlib.resources import files

    return pixels_to_tensor(resize_for_model(load_image(files("segswap") / "data" / "box_in_scene.png"), 224))


def test_untrained_tail_reproduces_the_frozen_networks_own_features(photo):
    early = get_backbone(tail_input_backbone("efficientnet-lite2", 2), "torch")(photo)
    full = get_backbone("efficientnet-lite2", "torch")(photo)
    tail = BackboneTail("efficientnet-lite2", 2)
    out = tail(early)
    assert out.shape == full.shape
    torch.testing.assert_close(out.norm(dim=1), torch.ones(out.shape[0], *out.shape[2:]))
    gap = 1 - F.cosine_similarity(out, full, dim=1).mean()
    assert gap < 0.05
    # the blocks do change the features: block 12's are more than twice as far from block 14's
    assert 1 - F.cosine_similarity(early, full, dim=1).mean() > 2 * gap


def test_tail_trains_but_keeps_its_batch_norm_statistics(photo):
    model = SegSwapTransformer(input_dim=120, dim=32, ffn_dim=32, layers="IC", flow_head="match", tail_blocks=2).train()
    batch_norms = [m for m in model.tail.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and not any(m.training for m in batch_norms)
    before = [m.running_mean.clone() for m in batch_norms]
    feats = get_backbone(tail_input_backbone("efficientnet-lite2", 2), "torch")(photo)
    out = model({"feats_a": feats, "feats_b": feats.flip(-1)})
    out["mask_a"].mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.tail.parameters() if p.ndim > 1)
    assert all(torch.equal(m.running_mean, b) for m, b in zip(batch_norms, before))


def test_parameter_groups_give_the_tail_its_own_learning_rate():
    model = SegSwapTransformer(input_dim=120, dim=32, ffn_dim=32, layers="IC", tail_blocks=2, tail_lr_scale=0.25)
    groups = model.parameter_groups()
    assert [g["lr_scale"] for g in groups] == [1.0, 0.25]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.tail.parameters()}
    assert len(SegSwapTransformer(input_dim=8, dim=16, ffn_dim=16).parameter_groups()) == 1


def test_tails_without_a_backbone_cut_to_feed_them_are_refused():
    assert tail_input_backbone("efficientnet-lite2", 2) == "efficientnet-lite2-block12"
    with pytest.raises(ValueError, match="no backbone efficientnet-lite2-block13.*efficientnet-lite2-block12"):
        BackboneTail("efficientnet-lite2", 1)
    with pytest.raises(ValueError, match="tail_network"):
        BackboneTail("resnet-50", 2)


def test_the_shipped_tail_runs_on_onnx_for_inference_and_on_torch_for_training(photo, tmp_path, monkeypatch):
    import segswap

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # exported here, once
    matcher = segswap.load()
    tail = matcher.model.tail
    assert tail is not None and tail.onnx is not None and matcher.backbone.runtime == "onnx"
    assert len(list((tmp_path / "segswap").glob("tail-*.onnx"))) == 1
    feats = get_backbone(tail_input_backbone("efficientnet-lite2", 2), "torch")(torch.cat([photo, photo.flip(-1)]))
    with torch.inference_mode():
        on_onnx = tail(feats)
        session, tail.onnx = tail.onnx, None
        on_torch = tail(feats)
        tail.onnx = session
    torch.testing.assert_close(on_onnx, on_torch, atol=1e-5, rtol=1e-4)
    # with gradients (training) the PyTorch blocks run, and learn
    out = tail(feats)
    out.sum().backward()
    assert out.requires_grad and tail.log_scale.grad is not None
    # a second load reuses the exported file; on torch the tail stays in PyTorch
    assert segswap.load().model.tail.onnx is not None and len(list((tmp_path / "segswap").glob("tail-*.onnx"))) == 1
    assert segswap.load(runtime="torch").model.tail.onnx is None
