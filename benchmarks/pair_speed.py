"""Per-pair inference time at 480 px, split into backbone and transformer, for each backbone, against
a reference configuration like the authors' (ResNet-50 conv4, 1024 channels, both images' tokens
concatenated with a block attention mask) timed in the same run.

    .venv/bin/python benchmarks/pair_speed.py [--size 480] [--repeats 7]

Prints the machine, the measured matmul rate, and per configuration: milliseconds, GFLOPs (counted by
torch's FlopCounterMode on the PyTorch graph; analytic for the DINOv2 ONNX graph), the fraction of the
matmul rate achieved, and the speed-up over the reference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, matmul_gflops, median_time, print_table, run_and_record  # noqa: E402

from segswap.backbone import get_backbone, list_backbones
from segswap.models import SegSwapTransformer
from segswap.models.transformer import PAPER_CONF
from segswap.models.layers import sine_position_encoding


# ---- the reference: the authors' configuration, for timing only (random weights) ---------------------
class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def resnet50_conv4() -> nn.Module:
    """ResNet-50 up to layer3 (conv4): stride 16, 1024 channels."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * 4
    return nn.Sequential(*layers).eval()


class ConcatenatedTransformer(nn.Module):
    """The authors' layout: one sequence of both images' tokens, self/cross chosen by a block mask."""

    def __init__(self, input_dim=1024, dim=256, heads=2, ffn_dim=256, layers="ICICI"):
        super().__init__()
        self.layers = layers
        self.project = nn.Conv2d(input_dim, dim, 1)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, ffn_dim, 0.1, batch_first=True) for _ in layers)
        self.head = nn.Conv2d(dim, 3, 1)

    def forward(self, fa, fb):
        b, _, h, w = fa.shape
        n = h * w
        x = torch.cat([self.project(fa).flatten(2), self.project(fb).flatten(2)], 2).transpose(1, 2)
        pos = 0.1 * sine_position_encoding(h, w, x.shape[-1]).repeat(2, 1)
        same = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
        same[:n, :n] = same[n:, n:] = True
        for kind, block in zip(self.layers, self.blocks):
            x = block(x + pos if kind == "I" else x, src_mask=~same if kind == "I" else same)
        x = x.transpose(1, 2)
        return torch.sigmoid(self.head(x[..., :n].reshape(b, -1, h, w))), torch.sigmoid(self.head(x[..., n:].reshape(b, -1, h, w)))


def count_gflops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def vit_gflops(tokens: int, dim: int = 384, blocks: int = 12) -> float:
    """Analytic FLOPs of ViT blocks: 12·N·d² (qkv, projection, 4× MLP) + 2·N²·d (attention), ×2 per MAC."""
    return 2 * blocks * (12 * tokens * dim**2 + 2 * tokens**2 * dim) / 1e9


def end_to_end_row(size: int, repeats: int, reference_total: float, peak: float, weights=None) -> list:
    """``Matcher.match`` on two image files with the default backbone, or the model and backbone of
    ``weights``: decoding, resizing, features, transformer, Eq. 3 score, upsampled masks and
    correspondences. (Untrained weights: same cost.)"""
    import tempfile

    import cv2
    import numpy as np

    import segswap

    matcher = (segswap.load(weights=weights, size=size) if weights else
               segswap.load("segswap", allow_untrained=True, size=size, **PAPER_CONF))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name in ("a.png", "b.png"):
            path = f"{tmp}/{name}"
            cv2.imwrite(path, (rng.random((size, size, 3)) * 255).astype(np.uint8))
            paths.append(path)
        # one view without the objectness prior and the keypoint matches: the model's own cost (`segswap pair`
        # adds views, the prior and the keypoints; benchmarks/view_search_speed.py and keypoints_speed.py time them)
        total = median_time(lambda: matcher.match(*paths, scales=(1.0,), prior=False, keypoints=False), repeats)
    label = f"segswap.load(weights={Path(weights).name})" if weights else "segswap.load()"
    return [f"end to end: {label}.match(file, file, scales=(1,), prior=False, keypoints=False), {matcher.backbone.name}", matcher.backbone.runtime,
            matcher.backbone.channels, "", "", f"{1e3 * total:.0f}", "", "", f"{reference_total / total:.2f}×"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--weights", type=Path, help="also time segswap.load(weights=...) end to end")
    add_json_argument(parser)
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(machine_summary())
    peak = matmul_gflops()
    print(f"measured fp32 matmul rate: {peak:.1f} GFLOP/s")
    s, g = args.size, args.size // 16
    image = torch.rand(1, 3, s, s)
    rows = []

    torch.manual_seed(0)
    ref_backbone, ref_model = resnet50_conv4(), ConcatenatedTransformer().eval()
    with torch.inference_mode():
        ref_feats = ref_backbone(image)
        t_bb = median_time(lambda: ref_backbone(image), args.repeats)
        t_tr = median_time(lambda: ref_model(ref_feats, ref_feats), args.repeats)
        flops = 2 * count_gflops(lambda: ref_backbone(image)) + count_gflops(lambda: ref_model(ref_feats, ref_feats))
    reference_total = 2 * t_bb + t_tr
    rows.append(["reference: ResNet-50 conv4 + concatenated", "torch", 1024, f"{2e3 * t_bb:.0f}", f"{1e3 * t_tr:.0f}",
                 f"{1e3 * reference_total:.0f}", f"{flops:.1f}", f"{flops / reference_total / peak:.0%}", "1.00×"])

    for info in list_backbones():
        if not info["installed"] or info["kind"] == "prior":  # the objectness prior is not a feature backbone
            continue
        for runtime in info["runtimes"]:
            backbone = get_backbone(info["name"], runtime)
            model = SegSwapTransformer(input_dim=backbone.channels, **PAPER_CONF).eval()
            with torch.inference_mode():
                feats = backbone(image)
                t_bb = median_time(lambda: backbone(image), args.repeats)
                data = {"feats_a": feats, "feats_b": feats}
                t_tr = median_time(lambda: model(data), args.repeats)
                tr_flops = count_gflops(lambda: model(data))
            if info["name"].startswith("dinov2"):
                bb_flops = vit_gflops(g * g, blocks=backbone.block + 1)  # one 14-px patch per 16-px cell
            elif runtime == "torch":
                bb_flops = count_gflops(lambda: backbone(image))
            else:
                bb_flops = count_gflops(lambda: get_backbone(info["name"], "torch")(image))
            total = 2 * t_bb + t_tr
            flops = 2 * bb_flops + tr_flops
            rows.append([f"{info['name']} + SegSwap transformer", runtime, backbone.channels, f"{2e3 * t_bb:.0f}",
                         f"{1e3 * t_tr:.0f}", f"{1e3 * total:.0f}", f"{flops:.1f}", f"{flops / total / peak:.0%}",
                         f"{reference_total / total:.2f}×"])

    rows.append(end_to_end_row(s, args.repeats, reference_total, peak))
    if args.weights:
        rows.append(end_to_end_row(s, args.repeats, reference_total, peak, args.weights))
    print(f"\none pair of {s}×{s} images ({g}×{g} tokens each), median of {args.repeats}; backbone column = both images\n")
    print_table(["configuration", "runtime", "channels", "backbone ms", "transformer ms", "total ms", "GFLOPs",
                 "of matmul rate", "speed-up vs reference"], rows)


if __name__ == "__main__":
    run_and_record(main)
