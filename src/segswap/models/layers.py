"""Pieces shared by the pair models: positional encoding, attention, the 3-channel head, flow reading."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sine_position_encoding(height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR-style 2-D sine encoding, (H·W)×dim; half the channels encode y, half encode x.

    Coordinates are normalised to (0, 2π] so the same model runs at any grid size.
    """
    if dim % 4:
        raise ValueError(f"positional encoding width must be a multiple of 4, got {dim}")
    half = dim // 2
    y = torch.arange(1, height + 1, dtype=torch.float32) / height * 2 * math.pi
    x = torch.arange(1, width + 1, dtype=torch.float32) / width * 2 * math.pi
    freq = temperature ** (2 * (torch.arange(half, dtype=torch.float32) // 2) / half)
    py = y[:, None] / freq  # H×half
    px = x[:, None] / freq  # W×half
    py = torch.stack((py[:, 0::2].sin(), py[:, 1::2].cos()), dim=2).flatten(1)
    px = torch.stack((px[:, 0::2].sin(), px[:, 1::2].cos()), dim=2).flatten(1)
    grid = torch.cat((py[:, None, :].expand(height, width, half), px[None, :, :].expand(height, width, half)), dim=2)
    return grid.reshape(height * width, dim)


class MultiHeadAttention(nn.Module):
    """Multi-head attention over separate query and key/value token sets (sizes may differ).

    Uses ``scaled_dot_product_attention`` so no block mask or concatenated sequence is needed. No
    dropout on the attention weights: on the CPU it forces SDPA's slow path (a Bernoulli mask over the
    full N×M matrix cost ~40 % of a training step); the blocks keep dropout on their residuals.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, d = queries.shape
        q = self.to_q(queries).view(b, n, self.heads, d // self.heads).transpose(1, 2)
        k, v = self.to_kv(context).view(b, context.shape[1], 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class AttentionBlock(nn.Module):
    """Post-norm transformer block: attention then feed-forward, each with residual and LayerNorm."""

    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.attention = MultiHeadAttention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.attention(x, context)))
        return self.norm2(x + self.drop(self.ffn(x)))


class GridContext(nn.Module):
    """Residual blocks of two 3×3 convolutions over a B×C×H×W token grid: each cell sees its
    neighbours' features and correlation cues before (and after) the attention layers."""

    def __init__(self, dim: int, blocks: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1)) for _ in range(blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


def read_through_flow(values: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinearly read ``values`` (B×C×H×W) at ``flow`` (B×h×w×2, (x, y) in [0, 1]) → B×C×h×w."""
    return F.grid_sample(values, flow * 2 - 1, mode="bilinear", padding_mode="border", align_corners=False)


def split_head_output(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """B×3×H×W head logits → (mask B×H×W, flow B×H×W×2), both through a clamped sigmoid."""
    out = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
    return out[:, 2], out[:, :2].permute(0, 2, 3, 1)


def merged_conf(model: nn.Module, conf: dict) -> dict:
    """``model.default_conf`` with the overrides ``conf``; an option it does not have is an error."""
    unknown = set(conf) - set(model.default_conf)
    if unknown:
        raise ValueError(f"unknown {type(model).__name__} options: {sorted(unknown)}")
    return {**model.default_conf, **conf}
