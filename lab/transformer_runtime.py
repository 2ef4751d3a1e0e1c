"""Issue 38, item 2: the shipped transformer's core (tokens, attention blocks, head and match logits; the
tail, the correlation cues and the flow read-out aside) on PyTorch, on ONNX Runtime, and on ONNX Runtime
with int8 dynamic quantisation (onnxruntime.quantization.quantize_dynamic), in one run.

    .venv/bin/python lab/transformer_runtime.py

Prints, for one 30×30-token pair and for a batch of 16 search-sized pairs (22×30 tokens), the median
milliseconds and the largest difference of each runtime's outputs from PyTorch's; then the rate (GFLOP/s)
of scaled-dot-product attention and of a plain matmul-softmax-matmul on the shapes a pair and a search batch
give it. Results: lab/performance.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from segswap.models.layers import sine_position_encoding
from segswap.pair import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _machine import median_time  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "segswap" / "data" / "segswap.safetensors"
NAMES = ("fa", "fb", "pos_a", "pos_b")


class Core(torch.nn.Module):
    """SegSwapTransformer.forward between the cues and the flow read-out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, fa, fb, pos_a, pos_b):
        m = self.model
        (ha, wa), (hb, wb) = fa.shape[2:], fb.shape[2:]
        xa, xb = m._attend(m._tokens(fa), m._tokens(fb), pos_a, pos_b)
        return m._head(xa, ha, wa), m._head(xb, hb, wb), m._match_logits(xa, xb)


def median_ms(fn, repeats: int = 15) -> float:
    return 1e3 * median_time(fn, repeats=repeats, warmup=3)


def main() -> None:
    torch.set_num_threads(2)
    core = Core(load(weights=WEIGHTS, size=480).model.eval()).eval()
    channels, dim = core.model.project.in_channels, core.model.conf["dim"]

    def inputs(h, w, batch):
        pos = core.model.conf["pos_weight"] * sine_position_encoding(h, w, dim)
        return torch.randn(batch, channels, h, w), torch.randn(batch, channels, h, w), pos, pos

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    with tempfile.TemporaryDirectory() as tmp:
        plain, quantised = f"{tmp}/core.onnx", f"{tmp}/core_int8.onnx"
        torch.onnx.export(core, inputs(30, 30, 1), plain, input_names=list(NAMES), output_names=["head_a", "head_b", "logits"],
                          dynamic_axes={"fa": {0: "B", 2: "ha", 3: "wa"}, "fb": {0: "B", 2: "hb", 3: "wb"},
                                        "pos_a": {0: "na"}, "pos_b": {0: "nb"}}, opset_version=17, dynamo=False)
        quantize_dynamic(plain, quantised, weight_type=QuantType.QInt8)
        sessions = {name: ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                    for name, path in (("onnxruntime", plain), ("onnxruntime int8", quantised))}
        for h, w, batch in ((30, 30, 1), (22, 30, 16)):
            x = inputs(h, w, batch)
            feed = {k: v.numpy() for k, v in zip(NAMES, x)}
            with torch.inference_mode():
                reference = [t.numpy() for t in core(*x)]
                print(f"{batch}× {h}×{w} tokens: pytorch {median_ms(lambda: core(*x)):.0f} ms")
            for name, session in sessions.items():
                diff = max(float(np.abs(o - r).max()) for o, r in zip(session.run(None, feed), reference))
                print(f"{batch}× {h}×{w} tokens: {name} {median_ms(lambda: session.run(None, feed)):.0f} ms, "
                      f"largest difference from pytorch {diff:.2g}")


def attention_rates() -> None:
    import torch.nn.functional as F

    def plain(q, k, v):
        return ((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5).softmax(-1) @ v

    with torch.inference_mode():
        for batch, queries, keys in ((1, 900, 900), (16, 660, 660), (16, 130, 660), (16, 660, 130)):
            q, k, v = torch.randn(batch, 2, queries, 64), torch.randn(batch, 2, keys, 64), torch.randn(batch, 2, keys, 64)
            gflop = 4 * batch * 2 * queries * keys * 64 / 1e9
            sdpa, manual = median_ms(lambda: F.scaled_dot_product_attention(q, k, v)), median_ms(lambda: plain(q, k, v))
            print(f"attention {batch}× {queries}×{keys} tokens, 2 heads of 64: scaled_dot_product_attention "
                  f"{1e3 * gflop / sdpa:.0f} GFLOP/s, matmul-softmax-matmul {1e3 * gflop / manual:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
    attention_rates()
