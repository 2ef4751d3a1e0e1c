"""The last blocks of a pretrained backbone, inside a pair model so that training fine-tunes them.

The frozen backbone is cut early (e.g. ``efficientnet-lite2-block12``) and its L2-normalised output
goes through the remaining blocks here, initialised from the pretrained network. Frozen Lite2
features put the true partner of a synthetic pair's cell among the other image's 5 most similar cells
only 39 % of the time (lab/training.md); the blocks that make those features are what can learn the
invariances segment swapping teaches (style, scale, background).
"""

from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..backbone.base import OnnxModel, exported_onnx_model
from ..backbone.efficientnet import VARIANTS, load_stride16_net

#: Bumped when the tail's exported graph changes, so stale cached ONNX files are not reused.
ONNX_EXPORT_VERSION = 1


def tail_input_backbone(network: str, blocks: int) -> str:
    """The frozen backbone whose output a tail of ``blocks`` blocks of ``network`` continues from."""
    if network not in VARIANTS:
        raise ValueError(f"tail_network must be one of {', '.join(VARIANTS)}, got {network!r}")
    name = f"{network}-block{VARIANTS[network].last_block - blocks}"
    if name not in VARIANTS:
        cuts = [v for v in VARIANTS if v.startswith(f"{network}-block")]
        raise ValueError(f"no backbone {name} for a {blocks}-block tail of {network}; cuts available: {', '.join(cuts) or 'none'}")
    return name


class BackboneTail(nn.Module):
    """The last ``blocks`` blocks of the pretrained ``network``'s stride-16 cut, trainable.

    Input: B×C×H×W L2-normalised features of the cut before them (:func:`tail_input_backbone`). They
    are multiplied by a learned scale (initialised to the raw features' mean norm, so the pretrained
    blocks see inputs of the size they were trained on: on 32 training images the tail then
    reproduces the frozen network's own output at cosine 0.98) and run through the blocks; output
    L2-normalised.
    Batch-norm statistics stay frozen in training mode too (batches of 12 pairs are too small and too
    alike to re-estimate them).
    """

    #: Mean norm of Lite2's block-12 output over 32 synthetic training images at 320 px (57.1 ± 13.1).
    INPUT_NORM = 57.1

    def __init__(self, network: str, blocks: int):
        super().__init__()
        self.input_channels = VARIANTS[tail_input_backbone(network, blocks)].channels  # refuses tails no cut feeds
        net = load_stride16_net(network)
        last = VARIANTS[network].last_block
        self.blocks = nn.Sequential(*net.blocks[last + 1 - blocks:])
        self.blocks.requires_grad_(True)
        self.log_scale = nn.Parameter(torch.tensor(math.log(self.INPUT_NORM)))
        self.onnx: OnnxModel | None = None  # set by run_on_onnx
        self.train(False)

    def train(self, mode: bool = True) -> "BackboneTail":
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.onnx is not None and not self.training and not torch.is_grad_enabled():
            return self.onnx(feats)
        return F.normalize(self.blocks(feats * self.log_scale.exp()), dim=1)

    def run_on_onnx(self, weights_sha256: str) -> None:
        """From now on run inference (eval mode, no gradient) on ONNX Runtime: the convolutions of a batch
        run 3–4× faster there than in PyTorch. The graph of these weights (``weights_sha256``, of the
        file they came from) is exported once to the cache folder; training still runs in PyTorch."""
        key = f"{weights_sha256}|{torch.__version__}|{ONNX_EXPORT_VERSION}"
        filename = f"tail-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
        self.onnx = None  # the export traces the PyTorch blocks
        self.onnx = exported_onnx_model(filename, self, torch.rand(1, self.input_channels, 8, 12),
                                        ("features", "tail_features"), "the model's backbone tail")
