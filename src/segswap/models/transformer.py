"""The SegSwap cross-image transformer (Shen et al., "Learning Co-segmentation by Segment Swapping").

Input: two frozen, L2-normalised backbone feature maps. Output, per image: a co-segmentation mask and,
for each cell, where the same point lies in the other image. Layers alternate attention inside each
image ("I") and across images ("C"), pattern "ICICI" by default; self layers see the 2-D sine position
encoding, cross layers do not, as in the authors' model.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import AttentionBlock, sine_position_encoding, split_head_output


class SegSwapTransformer(nn.Module):
    """Cross-image transformer.

    ``forward({"feats_a": B×C×Ha×Wa, "feats_b": B×C×Hb×Wb})`` returns a dict:

    - ``mask_a`` B×Ha×Wa, ``mask_b`` B×Hb×Wb: co-segmentation probabilities in [0, 1];
    - ``flow_ab`` B×Ha×Wa×2: for each cell of a, (x, y) in [0, 1] of its match in b;
      ``flow_ba`` B×Hb×Wb×2 likewise.

    Image a and b may have different grid sizes. Weights are shared between the two directions.
    """

    default_conf = {
        "input_dim": 120,  # backbone channels
        "dim": 256,
        "heads": 2,
        "ffn_dim": 256,
        "layers": "ICICI",
        "dropout": 0.1,
        "pos_weight": 0.1,
    }

    def __init__(self, **conf):
        super().__init__()
        unknown = set(conf) - set(self.default_conf)
        if unknown:
            raise ValueError(f"unknown SegSwapTransformer options: {sorted(unknown)}")
        self.conf = {**self.default_conf, **conf}
        c = self.conf
        if set(c["layers"]) - {"I", "C"} or not c["layers"]:
            raise ValueError(f"layers must be a non-empty string of 'I' and 'C', got {c['layers']!r}")
        self.project = nn.Conv2d(c["input_dim"], c["dim"], kernel_size=1)
        self.feature_dropout = nn.Dropout2d(c["dropout"])
        self.blocks = nn.ModuleList(AttentionBlock(c["dim"], c["heads"], c["ffn_dim"], c["dropout"]) for _ in c["layers"])
        self.head = nn.Conv2d(c["dim"], 3, kernel_size=1)

    def forward(self, data: dict) -> dict:
        fa, fb = data["feats_a"], data["feats_b"]
        (b, _, ha, wa), (_, _, hb, wb) = fa.shape, fb.shape
        xa = self._tokens(fa)
        xb = self._tokens(fb)
        pos_a = self.conf["pos_weight"] * sine_position_encoding(ha, wa, self.conf["dim"]).to(xa)
        pos_b = self.conf["pos_weight"] * sine_position_encoding(hb, wb, self.conf["dim"]).to(xb)
        for kind, block in zip(self.conf["layers"], self.blocks):
            if kind == "I":
                ya, yb = xa + pos_a, xb + pos_b
                xa, xb = block(ya, ya), block(yb, yb)
            else:
                xa, xb = block(xa, xb), block(xb, xa)
        mask_a, flow_ab = split_head_output(self._head(xa, ha, wa))
        mask_b, flow_ba = split_head_output(self._head(xb, hb, wb))
        return {"mask_a": mask_a, "mask_b": mask_b, "flow_ab": flow_ab, "flow_ba": flow_ba}

    def _tokens(self, feats: torch.Tensor) -> torch.Tensor:
        return self.feature_dropout(self.project(feats)).flatten(2).transpose(1, 2)

    def _head(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.head(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w))
