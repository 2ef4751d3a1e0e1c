"""Cost of one training step of the shipped recipe at larger token grids, and of fine-tuning the
backbone's last blocks, against the recipe's own step (20×20 cells, 320 px) timed in the same run.

    .venv/bin/python benchmarks/train_step_speed.py [--repeats 5]

A step: the `default` recipe's transformer on 6 positive + 6 negative pairs of random L2-normalised
features, forward, loss, backward and Adam. "Fine-tuning" rows time forward and backward through
EfficientNet-Lite2's last stride-16 blocks for the step's 24 images (block inputs are random), the
extra work a partly trainable backbone would add to every step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, median_time, print_table, run_and_record  # noqa: E402

from segswap.backbone.efficientnet import load_stride16_net  # noqa: E402
from segswap.models.transformer import SegSwapTransformer  # noqa: E402
from segswap.train.losses import segswap_loss  # noqa: E402
from segswap.train.recipes import get_recipe  # noqa: E402

PAIRS = 12


def transformer_step(cells: int):
    recipe = get_recipe("default")
    model = SegSwapTransformer(input_dim=120, **recipe["model_conf"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    feats = [F.normalize(torch.randn(PAIRS, 120, cells, cells, generator=g), dim=1) for _ in range(2)]
    target = {"mask_a": torch.rand(PAIRS, cells, cells, generator=g).round(), "mask_b": torch.rand(PAIRS, cells, cells, generator=g).round(),
              "flow_ab": torch.rand(PAIRS, cells, cells, 2, generator=g), "flow_ba": torch.rand(PAIRS, cells, cells, 2, generator=g)}

    def step():
        loss = segswap_loss(model({"feats_a": feats[0], "feats_b": feats[1]}), target, recipe["loss_weights"])["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def backbone_blocks_step(net, first_block: int, cells: int = 20):
    blocks = torch.nn.Sequential(*net.blocks[first_block:]).train()
    blocks.requires_grad_(True)
    for module in blocks.modules():  # batch statistics stay frozen, as they would when fine-tuning
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    inputs = torch.randn(2 * PAIRS, net.blocks[first_block]._block_args.input_filters, cells, cells)

    def step():
        blocks.zero_grad(set_to_none=True)
        blocks(inputs).square().mean().backward()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    print(machine_summary())
    print(f"{PAIRS} pairs per step (the recipe's 6 + 6); median of {args.repeats}\n")
    reference = median_time(transformer_step(20), repeats=args.repeats)
    rows = [["transformer step, 20×20 cells (320 px, the recipe)", f"{reference:.2f}", "1.00×"]]
    for cells, px in ((24, 384), (30, 480)):
        seconds = median_time(transformer_step(cells), repeats=args.repeats)
        rows.append([f"transformer step, {cells}×{cells} cells ({px} px)", f"{seconds:.2f}", f"{seconds / reference:.2f}×"])
    net = load_stride16_net("efficientnet-lite2")
    last = len(net.blocks) - 1
    for first in (last, last - 1):
        seconds = median_time(backbone_blocks_step(net, first), repeats=args.repeats)
        blocks = f"block {last}" if first == last else f"blocks {first}–{last}"
        rows.append([f"+ fine-tuning Lite2 {blocks} (24 images, 20×20)", f"{seconds:.2f}", f"{seconds / reference:.2f}×"])
    print_table(["work", "s", "vs the recipe's step"], rows)


if __name__ == "__main__":
    run_and_record(main)
