"""The SegSwap cross-image transformer (Shen et al., "Learning Co-segmentation by Segment Swapping").

Input: two frozen, L2-normalised backbone feature maps. Output, per image: a co-segmentation mask and,
for each cell, where the same point lies in the other image. Layers alternate attention inside each
image ("I") and across images ("C"), pattern "ICICI" by default; self layers see the 2-D sine position
encoding, cross layers do not, as in the authors' model.

Two ways to read the correspondences off the last layer (``flow_head``):

- ``"regress"`` (the paper's): a 1×1 convolution regresses (x, y) through a sigmoid, beside the mask.
- ``"match"``: each cell's match is the soft-argmax over the other image's cells of the cosine
  similarity of the two cells' final tokens (after a learned projection, with a learned temperature).
  The geometry then comes from attention rather than from decoding coordinates, which trains in far
  fewer steps; see lab/training.md for the measured difference.

With ``correlation_prior``, three cues from the frozen features' correlation are appended to each
cell's features before the input projection: its best and second-best cosine similarity to the other
image, and its soft mutual-nearest-neighbour score (the training-free
:class:`~segswap.models.correlation.CorrelationMatcher`'s mask). Whether a cell has a partner is
then visible from the first layer instead of having to be discovered by attention, which a CPU
training budget of a few thousand steps cannot afford.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .correlation import cell_similarity, soft_argmax_flows
from .layers import AttentionBlock, GridContext, merged_conf, sine_position_encoding, split_head_output
from .tail import BackboneTail


#: The paper's model where it differs from the shipped one (:attr:`SegSwapTransformer.default_conf`):
#: width 256, dropout, coordinates regressed, no correlation cues and no grid context. For comparison
#: (benchmarks/pair_speed.py times it).
PAPER_CONF = {"dim": 256, "ffn_dim": 256, "dropout": 0.1, "flow_head": "regress", "correlation_prior": False,
              "context_convs": 0, "consensus_radius": 0}
PRIOR_CUES = ("best", "second", "mutual")
PRIOR_TEMPERATURE = 0.02  # as CorrelationMatcher's default


def diagonal_consensus(sim: torch.Tensor, grid_a: tuple[int, int], grid_b: tuple[int, int], radius: int) -> torch.Tensor:
    """Patch-level similarity from a cell-level one (B×Na×Nb): the mean of ``sim`` over the
    (2r+1)² pairs of cells displaced together, (a + d, b + d). A locally rigid match keeps its score,
    an isolated coincidence is averaged away (on synthetic pairs the true partner is among the 5 best
    cells 62 % of the time with r = 1, against 48 % for the cell similarity; lab/training.md)."""
    (ha, wa), (hb, wb), r = grid_a, grid_b, radius
    volume = sim.reshape(-1, ha, wa, hb, wb)
    total = torch.zeros_like(volume)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            # Cells whose displaced partners both stay inside their grids (slices, no padded copy).
            out = (slice(None), _span(ha, dy), _span(wa, dx), _span(hb, dy), _span(wb, dx))
            total[out] += volume[(slice(None),) + tuple(slice(s.start + d, s.stop + d) for s, d in zip(out[1:], (dy, dx, dy, dx)))]
    # How many displacements were inside both grids: separable in y and x.
    count = _overlaps(ha, hb, r)[:, None, :, None] * _overlaps(wa, wb, r)[None, :, None, :]
    return (total / count.to(total)).view_as(sim)


def _span(n: int, d: int) -> slice:
    """Indices i of a side of length n with i + d also inside it."""
    return slice(max(0, -d), n - max(0, d))


def _overlaps(n_a: int, n_b: int, r: int) -> torch.Tensor:
    """n_a×n_b: for each (i, j), the number of d in [−r, r] with i + d and j + d both inside."""
    i, j, d = torch.arange(n_a)[:, None, None], torch.arange(n_b)[None, :, None], torch.arange(-r, r + 1)
    return (((i + d) >= 0) & ((i + d) < n_a) & ((j + d) >= 0) & ((j + d) < n_b)).sum(-1)


def _cues(sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell of a and of b: best and second-best similarity and the soft mutual-NN score (B×N×3)."""
    mutual = (sim / PRIOR_TEMPERATURE).softmax(dim=2) * (sim / PRIOR_TEMPERATURE).softmax(dim=1)
    top_a = sim.topk(2, dim=2).values
    top_b = sim.topk(2, dim=1).values.transpose(1, 2)
    return (torch.cat([top_a, mutual.amax(dim=2, keepdim=True)], dim=2),
            torch.cat([top_b, mutual.amax(dim=1)[..., None]], dim=2))


def correlation_cues(fa: torch.Tensor, fb: torch.Tensor, consensus_radius: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Append :data:`PRIOR_CUES` channels to both feature maps (B×(C+3)×H×W each), and as many again
    computed on the :func:`diagonal_consensus` similarity when ``consensus_radius`` > 0."""
    (b, _, ha, wa), (hb, wb) = fa.shape, fb.shape[2:]
    sim = cell_similarity(fa, fb)
    sims = [sim] + ([diagonal_consensus(sim, (ha, wa), (hb, wb), consensus_radius)] if consensus_radius else [])
    cues = [_cues(s) for s in sims]
    cues_a = torch.cat([a for a, _ in cues], dim=2).transpose(1, 2).reshape(b, -1, ha, wa)
    cues_b = torch.cat([c for _, c in cues], dim=2).transpose(1, 2).reshape(b, -1, hb, wb)
    return torch.cat([fa, cues_a], dim=1), torch.cat([fb, cues_b], dim=1)


class SegSwapTransformer(nn.Module):
    """Cross-image transformer.

    ``forward({"feats_a": B×C×Ha×Wa, "feats_b": B×C×Hb×Wb})`` returns a dict:

    - ``mask_a`` B×Ha×Wa, ``mask_b`` B×Hb×Wb: co-segmentation probabilities in [0, 1];
    - ``flow_ab`` B×Ha×Wa×2: for each cell of a, (x, y) in [0, 1] of its match in b;
      ``flow_ba`` B×Hb×Wb×2 likewise;
    - with ``flow_head="match"``, also ``match_logits`` B×(Ha·Wa)×(Hb·Wb): the scores whose softmax over
      b's cells (dim 2) gives ``flow_ab`` and over a's cells (dim 1) ``flow_ba`` (in eval mode, over the
      ``eval_flow_radius`` window around the best cell).

    Image a and b may have different grid sizes. Weights are shared between the two directions.
    """

    #: The shipped model's options, the one source of them: training recipes read theirs from here
    #: (:mod:`segswap.train.base_recipe`); the shipped weights add a two-block tail (``tail_blocks`` 2 on
    #: block-12 features). lab/training.md says why each differs from :data:`PAPER_CONF`.
    default_conf = {
        "input_dim": 120,  # backbone channels
        "dim": 128,
        "heads": 2,
        "ffn_dim": 128,
        "layers": "ICICI",
        "dropout": 0.0,
        "pos_weight": 0.1,
        "flow_head": "match",
        "correlation_prior": True,
        "context_convs": 1,  # residual 3×3 conv blocks after the input projection and before the head
        "consensus_radius": 1,  # > 0: the prior's cues also from diagonal_consensus of this radius
        # flow_head "match", eval mode: soft-argmax only around the best cell (None: over the whole image).
        # The whole-image expectation averages a spread distribution's far modes into a point between
        # them; training keeps it (smooth gradients), inference reads the peak.
        "eval_flow_radius": 1,
        # > 0: the last blocks of tail_network are fine-tuned inside the model (BackboneTail); its
        # features then come from tail.tail_input_backbone(), e.g. efficientnet-lite2-block12.
        "tail_blocks": 0,
        "tail_network": "efficientnet-lite2",
        "tail_lr_scale": 1.0,  # the tail's learning rate relative to the rest of the model
    }

    def __init__(self, **conf):
        super().__init__()
        self.conf = merged_conf(self, conf)
        c = self.conf
        self.tail = BackboneTail(c["tail_network"], c["tail_blocks"]) if c["tail_blocks"] else None
        if set(c["layers"]) - {"I", "C"} or not c["layers"]:
            raise ValueError(f"layers must be a non-empty string of 'I' and 'C', got {c['layers']!r}")
        extra = len(PRIOR_CUES) * (2 if c["consensus_radius"] else 1) if c["correlation_prior"] else 0
        self.project = nn.Conv2d(c["input_dim"] + extra, c["dim"], kernel_size=1)
        self.feature_dropout = nn.Dropout2d(c["dropout"])
        self.input_context = GridContext(c["dim"], c["context_convs"])
        self.output_context = GridContext(c["dim"], c["context_convs"])
        self.blocks = nn.ModuleList(AttentionBlock(c["dim"], c["heads"], c["ffn_dim"], c["dropout"]) for _ in c["layers"])
        if c["flow_head"] not in ("regress", "match"):
            raise ValueError(f"flow_head must be 'regress' or 'match', got {c['flow_head']!r}")
        self.head = nn.Conv2d(c["dim"], 3, kernel_size=1)
        if c["flow_head"] == "match":
            self.match_projection = nn.Linear(c["dim"], c["dim"])
            self.match_log_scale = nn.Parameter(torch.tensor(math.log(20.0)))  # inverse temperature

    def forward(self, data: dict) -> dict:
        fa, fb = data["feats_a"], data["feats_b"]
        (_, _, ha, wa), (_, _, hb, wb) = fa.shape, fb.shape
        if self.tail is not None:
            fa, fb = self.tail(fa), self.tail(fb)
        if self.conf["correlation_prior"]:
            fa, fb = correlation_cues(fa, fb, self.conf["consensus_radius"])
        xa = self._tokens(fa)
        xb = self._tokens(fb)
        pos_a = self.conf["pos_weight"] * sine_position_encoding(ha, wa, self.conf["dim"]).to(xa)
        pos_b = self.conf["pos_weight"] * sine_position_encoding(hb, wb, self.conf["dim"]).to(xb)
        xa, xb = self._attend(xa, xb, pos_a, pos_b)
        mask_a, flow_ab = split_head_output(self._head(xa, ha, wa))
        mask_b, flow_ba = split_head_output(self._head(xb, hb, wb))
        out = {"mask_a": mask_a, "mask_b": mask_b, "flow_ab": flow_ab, "flow_ba": flow_ba}
        if self.conf["flow_head"] == "match":
            out["match_logits"] = self._match_logits(xa, xb)
            radius = None if self.training else self.conf["eval_flow_radius"]
            out["flow_ab"], out["flow_ba"] = soft_argmax_flows(out["match_logits"], (ha, wa), (hb, wb), radius)
        return out

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups; ``lr_scale`` multiplies the schedule's learning rate."""
        if self.tail is None:
            return [{"params": list(self.parameters()), "lr_scale": 1.0}]
        tail = {id(p) for p in self.tail.parameters()}
        return [{"params": [p for p in self.parameters() if id(p) not in tail], "lr_scale": 1.0},
                {"params": list(self.tail.parameters()), "lr_scale": self.conf["tail_lr_scale"]}]

    def _attend(self, xa: torch.Tensor, xb: torch.Tensor, pos_a: torch.Tensor, pos_b: torch.Tensor):
        """The attention layers: inside each image ("I", with the position encoding) or across ("C")."""
        for kind, block in zip(self.conf["layers"], self.blocks):
            if kind == "I":
                ya, yb = xa + pos_a, xb + pos_b
                xa, xb = block(ya, ya), block(yb, yb)
            else:
                xa, xb = block(xa, xb), block(xb, xa)
        return xa, xb

    def _match_logits(self, xa, xb):
        qa = F.normalize(self.match_projection(xa), dim=-1)
        qb = F.normalize(self.match_projection(xb), dim=-1)
        return qa @ qb.transpose(1, 2) * self.match_log_scale.exp()

    def _tokens(self, feats: torch.Tensor) -> torch.Tensor:
        return self.input_context(self.feature_dropout(self.project(feats))).flatten(2).transpose(1, 2)

    def _head(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.head(self.output_context(tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)))
