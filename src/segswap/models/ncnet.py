"""The NC-Net variant of the pair model (Rocco et al.'s neighbourhood consensus, as the SegSwap paper's
alternative to the transformer).

The 4-D correlation of the two frozen, L2-normalised feature maps (B×1×Ha×Wa×Hb×Wb) is filtered by
4-D convolutions (kernel 3, channels 1 → 16 → 1, ReLU), applied symmetrically: once to the volume and
once to its a↔b transpose, summed, so swapping the images transposes the result. The filtered scores
are softmax-normalised along each image; a cell's mask is the largest probability with which any cell
of the other image picks it, and its correspondence the soft-argmax of its own row (paper Eq. 1).

The 4-D convolution is dense, at token resolution: the sparse (MinkowskiEngine) version needs CUDA.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .correlation import cell_similarity, soft_argmax_flows
from .layers import merged_conf


class Conv4d(nn.Module):
    """4-D convolution with an odd kernel and 'same' zero padding on B×C×I×J×K×L volumes, computed as
    a sum of 3-D convolutions over (J, K, L), one per offset along I."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"Conv4d needs an odd kernel, got {kernel}")
        self.kernel = kernel
        self.slices = nn.ModuleList(
            nn.Conv3d(in_channels, out_channels, kernel, padding=kernel // 2, bias=(k == 0)) for k in range(kernel)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, i, j, k, l = x.shape
        pad = self.kernel // 2
        padded = F.pad(x, (0, 0, 0, 0, 0, 0, pad, pad))  # zero padding along I only
        out = 0
        for offset, conv in enumerate(self.slices):
            part = padded[:, :, offset:offset + i].transpose(1, 2).reshape(b * i, c, j, k, l)
            out = out + conv(part).view(b, i, -1, j, k, l)
        return out.transpose(1, 2)


class NCNetMatcher(nn.Module):
    """Neighbourhood-consensus pair model. Same inputs and outputs as
    :class:`segswap.models.transformer.SegSwapTransformer` (``mask_a`` B×Ha×Wa, ``mask_b`` B×Hb×Wb,
    ``flow_ab`` B×Ha×Wa×2, ``flow_ba`` B×Hb×Wb×2, (x, y) in [0, 1])."""

    default_conf = {
        "input_dim": 120,  # backbone channels (unused by the consensus; kept so weights record it)
        "channels": [16, 1],
        "kernel": 3,
        "temperature": 0.05,  # initial softmax temperature on the filtered scores (learned)
        "eval_flow_radius": 1,  # eval mode: soft-argmax around the best cell only (None: whole image)
    }

    def __init__(self, **conf):
        super().__init__()
        self.conf = merged_conf(self, conf)
        layers, previous = [], 1
        for channels in self.conf["channels"]:
            layers += [Conv4d(previous, channels, self.conf["kernel"]), nn.ReLU()]
            previous = channels
        if previous != 1:
            raise ValueError("the last consensus layer must have 1 channel")
        self.consensus = nn.Sequential(*layers)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / self.conf["temperature"])))

    def filtered_scores(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        """Symmetric neighbourhood consensus of the correlation → B×(Ha·Wa)×(Hb·Wb)."""
        (b, _, ha, wa), (hb, wb) = fa.shape, fb.shape[2:]
        volume = cell_similarity(fa, fb).view(b, 1, ha, wa, hb, wb)
        swapped = volume.permute(0, 1, 4, 5, 2, 3)
        scores = self.consensus(volume) + self.consensus(swapped).permute(0, 1, 4, 5, 2, 3)
        return scores.reshape(b, ha * wa, hb * wb)

    def forward(self, data: dict) -> dict:
        fa, fb = data["feats_a"], data["feats_b"]
        (b, _, ha, wa), (hb, wb) = fa.shape, fb.shape[2:]
        logits = self.filtered_scores(fa, fb) * self.log_scale.exp()
        to_b, to_a = logits.softmax(dim=2), logits.softmax(dim=1)
        mask_a = to_a.amax(dim=2).clamp(1e-7, 1 - 1e-7).view(b, ha, wa)
        mask_b = to_b.amax(dim=1).clamp(1e-7, 1 - 1e-7).view(b, hb, wb)
        radius = None if self.training else self.conf["eval_flow_radius"]
        flow_ab, flow_ba = soft_argmax_flows(logits, (ha, wa), (hb, wb), radius)
        return {"mask_a": mask_a, "mask_b": mask_b, "flow_ab": flow_ab, "flow_ba": flow_ba}
