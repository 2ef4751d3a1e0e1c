"""The SegSwap training loss (paper Eq. 2), for both directions of a pair; SCOTT's; MaCoSNet's (slides' Eq. 12).

``out`` is a pair model's output dict and ``target`` holds the same keys as ground truth
(``mask_a`` B×Ha×Wa, ``mask_b`` B×Hb×Wb in [0, 1]; ``flow_ab`` B×Ha×Wa×2, ``flow_ba`` B×Hb×Wb×2 in
[0, 1]). Negatives are pairs with all-zero target masks: their flows are never supervised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.correlation import cell_centres
from ..models.layers import read_through_flow
from ..models.macosnet import transform_points

#: Weight of each term; a weight of 0 switches the term off (ablations). ``corr`` is the paper's η;
#: ``dice``, ``jaccard``, ``false_positive`` and ``match_nll`` are ours, not the paper's (lab/training.md).
DEFAULT_LOSS_WEIGHTS = {"mask": 1.0, "transported": 1.0, "corr": 8.0, "dice": 0.0, "jaccard": 0.0,
                        "false_positive": 0.0, "match_nll": 0.0}


def transported_mask(mask_other: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The other image's mask (B×h×w) read where ``flow`` (B×H×W×2) points → B×H×W."""
    return read_through_flow(mask_other[:, None], flow)[:, 0].clamp(1e-7, 1 - 1e-7)


def correspondence_l1(flow: torch.Tensor, flow_gt: torch.Tensor, mask_gt: torch.Tensor) -> torch.Tensor:
    """Mean L1 error of (x, y) over cells where the ground-truth mask is on (0 when there are none)."""
    on = (mask_gt > 0.5).to(flow.dtype)
    err = (flow - flow_gt).abs().sum(dim=-1) * on
    return err.sum() / on.sum().clamp(min=1.0)


def batch_dice(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice over the whole batch. Pooled over pairs, so negatives (empty targets) still count:
    their predicted area only enlarges the denominator. Unlike per-cell BCE it does not let the ~90 %
    of empty cells push every probability below 0.5."""
    return 1 - 2 * (mask * target).sum() / (mask.sum() + target.sum()).clamp(min=1e-6)


def image_jaccard(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − soft Jaccard of each image whose target is not empty, averaged (0 if none). Unlike
    :func:`batch_dice`, a small object weighs as much as a large one, as in the mean per-image IoU the
    validation reports; images with empty targets (negatives) are left to the other terms."""
    inter = (mask * target).flatten(1).sum(1)
    union = (mask + target - mask * target).flatten(1).sum(1)
    positive = target.flatten(1).sum(1) > 0.5
    if not positive.any():
        return mask.sum() * 0
    return (1 - inter[positive] / union[positive].clamp(min=1e-6)).mean()


def image_false_positive(mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image with an empty target (a negative), its predicted area A against the mean true area T
    of the batch's other images, A / (A + T), averaged (0 if none): marking an object of typical size
    on a negative costs 0.5, what IoU 0.5 costs a positive in :func:`image_jaccard`."""
    area, truth = mask.flatten(1).sum(1), target.flatten(1).sum(1)
    negative = truth <= 0.5
    if not negative.any() or negative.all():
        return mask.sum() * 0
    typical = truth[~negative].mean()
    return (area[negative] / (area[negative] + typical)).mean()


def bilinear_cell_target(flow_gt: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """B×H×W×2 points (x, y) in [0, 1] → B×(H·W)×(h·w) weights over the other image's h×w cells: each
    point's bilinear weights on the four cell centres around it (clamped at the grid's edge)."""
    h, w = grid
    x = (flow_gt[..., 0] * w - 0.5).clamp(0, w - 1).flatten(1)
    y = (flow_gt[..., 1] * h - 0.5).clamp(0, h - 1).flatten(1)
    x0, y0 = x.floor().clamp(max=w - 2 if w > 1 else 0), y.floor().clamp(max=h - 2 if h > 1 else 0)
    fx, fy = x - x0, y - y0
    target = flow_gt.new_zeros(x.shape[0], x.shape[1], h * w)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            index = ((y0 + dy).clamp(max=h - 1) * w + (x0 + dx).clamp(max=w - 1)).long()
            target.scatter_add_(2, index[..., None], (wy * wx)[..., None])
    return target


def match_nll(logits: torch.Tensor, flow_gt: torch.Tensor, mask_gt: torch.Tensor, grid_other: tuple[int, int],
              dim: int) -> torch.Tensor:
    """Cross-entropy of the match distribution (softmax of ``logits`` over the other image's cells,
    along ``dim``) against the true point's bilinear cell weights, over cells inside the true mask.
    Unlike the L1 on the soft-argmax, it cannot be met by a spread distribution centred on the right
    place, nor by one split between a right and a wrong match."""
    log_p = logits.log_softmax(dim=dim)
    if dim == 1:
        log_p = log_p.transpose(1, 2)
    on = (mask_gt > 0.5).flatten(1).to(logits.dtype)
    per_cell = -(bilinear_cell_target(flow_gt, grid_other) * log_p).sum(-1)
    return (per_cell * on).sum() / on.sum().clamp(min=1.0)


def segswap_loss(out: dict, target: dict, weights: dict | None = None) -> dict:
    """Loss terms and their weighted ``total`` (all scalars)."""
    w = {**DEFAULT_LOSS_WEIGHTS, **(weights or {})}
    terms = {}
    terms["mask"] = F.binary_cross_entropy(out["mask_a"], target["mask_a"]) + F.binary_cross_entropy(out["mask_b"], target["mask_b"])
    terms["transported"] = (
        F.binary_cross_entropy(transported_mask(out["mask_b"], out["flow_ab"]), target["mask_a"])
        + F.binary_cross_entropy(transported_mask(out["mask_a"], out["flow_ba"]), target["mask_b"])
    )
    terms["corr"] = correspondence_l1(out["flow_ab"], target["flow_ab"], target["mask_a"]) + correspondence_l1(
        out["flow_ba"], target["flow_ba"], target["mask_b"]
    )
    terms["dice"] = batch_dice(out["mask_a"], target["mask_a"]) + batch_dice(out["mask_b"], target["mask_b"])
    if w["jaccard"]:
        terms["jaccard"] = image_jaccard(out["mask_a"], target["mask_a"]) + image_jaccard(out["mask_b"], target["mask_b"])
    if w["false_positive"]:
        terms["false_positive"] = (image_false_positive(out["mask_a"], target["mask_a"])
                                   + image_false_positive(out["mask_b"], target["mask_b"]))
    if w["match_nll"]:
        if "match_logits" not in out:
            raise ValueError("the match_nll loss needs a model with match logits (flow_head='match')")
        grid_a, grid_b = tuple(target["mask_a"].shape[1:]), tuple(target["mask_b"].shape[1:])
        terms["match_nll"] = (match_nll(out["match_logits"], target["flow_ab"], target["mask_a"], grid_b, dim=2)
                              + match_nll(out["match_logits"], target["flow_ba"], target["mask_b"], grid_a, dim=1))
    terms["total"] = sum(w[k] * terms[k] for k in DEFAULT_LOSS_WEIGHTS if w[k])
    return terms


#: SCOTT's terms: segmentation (BCE + batch Dice, positives only) and the match BCE.
SCOTT_LOSS_WEIGHTS = {"seg": 1.0, "match": 1.0}


def scott_loss(out: dict, target: dict, weights: dict | None = None) -> dict:
    """SCOTT's loss (paper §4.3): L_CE on the match plus L_SEG on both masks. As in the paper, the
    segmentation heads learn from matching pairs only; pairs whose predicted mask was empty (their
    logit is a constant) carry no match gradient. A pair is a match when both target masks are set."""
    w = {**SCOTT_LOSS_WEIGHTS, **(weights or {})}
    label = ((target["mask_a"].flatten(1).amax(1) > 0.5) & (target["mask_b"].flatten(1).amax(1) > 0.5)).float()
    positive = label > 0
    terms = {}
    if positive.any():
        terms["seg"] = sum(
            F.binary_cross_entropy(out[k][positive], target[k][positive]) + batch_dice(out[k][positive], target[k][positive])
            for k in ("mask_a", "mask_b")
        )
    else:
        terms["seg"] = out["mask_a"].sum() * 0.0
    scored = ~out["empty"]
    if scored.any():
        terms["match"] = F.binary_cross_entropy_with_logits(out["match_logit"][scored], label[scored])
    else:
        terms["match"] = out["mask_a"].sum() * 0.0
    terms["total"] = sum(w[k] * terms[k] for k in SCOTT_LOSS_WEIGHTS if w[k])
    return terms


#: MaCoSNet's terms (slides' Eq. 12: L_matching + λ_cycle L_cycle + λ_trans L_trans + λ_contrast
#: L_contrast + λ_task L_task), plus ours, ``presence``: each image's few most confident mask cells
#: should say whether the pair shares an object (multiple-instance BCE: 1 on the triplets' pairs, 0 on
#: negatives). Without it both masks saturate to all ones or to nothing (lab/training.md). A weight of
#: 0 switches a term off. With ``supervision: full`` (an
#: ablation) the terms of :data:`DEFAULT_LOSS_WEIGHTS` can be added on the pairs with ground truth.
MACOSNET_LOSS_WEIGHTS = {"matching": 1.0, "cycle": 1.0, "transitivity": 1.0, "contrast": 1.0, "task": 1.0, "presence": 1.0}
#: A correspondence (p, q) counts as consistent with T_AB within this many cells of B (the slides'
#: φ), as a Gaussian weight so that T receives a gradient.
MATCH_TOLERANCE_CELLS = 1.0
#: Softmax temperature turning a cell's cosine similarities into a distribution over the other image.
MATCH_TEMPERATURE = 0.05
#: The perceptual contrastive loss's margin m, on 1 − cosine of pooled features.
CONTRAST_MARGIN = 0.5


def consistency_points(n: int = 10) -> torch.Tensor:
    """The slides' 10×10 = 100 coordinates at which the consistency losses are measured, n²×2 in [-1, 1]."""
    steps = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1
    return torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).reshape(-1, 2)


def foreground_matching(out: dict, direction: str, grid_from: tuple[int, int], grid_to: tuple[int, int]) -> torch.Tensor:
    """−(mask-weighted mean over the cells p of one image of s(p)), slides' Eqs. 1–3 for one direction.

    s(p) = Σ_q m(p, q) · S(p, q): S the softmax over the other image's cells of the correlation,
    m(p, q) = exp(−‖T(p) − q‖² / 2φ²) in cells (the slides' indicator, made smooth). The mean over the
    cells instead of the slides' sum, so that the term's scale does not depend on the grid.
    It pulls each cell's mask up in proportion to how well its match agrees with the warp; the
    contrastive term pulls the masks of what the two images do not share down."""
    correlation = out["correlation"] if direction == "ab" else out["correlation"].transpose(1, 2)
    mask = out["mask_a" if direction == "ab" else "mask_b"].flatten(1)
    (h, w), (ht, wt) = grid_from, grid_to
    start = (cell_centres(h, w, mask.device) * 2 - 1).expand(len(mask), -1, -1)
    landed = (transform_points(out, direction, start) + 1) / 2 * torch.tensor([wt, ht], device=mask.device)  # in cells
    # The Gaussian is separable: its x and y factors (B×N×wt, B×N×ht), instead of a B×N×(ht·wt) distance.
    near_x = torch.exp(-(landed[..., :1] - (torch.arange(wt, device=mask.device) + 0.5)) ** 2 / (2 * MATCH_TOLERANCE_CELLS ** 2))
    near_y = torch.exp(-(landed[..., 1:] - (torch.arange(ht, device=mask.device) + 0.5)) ** 2 / (2 * MATCH_TOLERANCE_CELLS ** 2))
    probability = (correlation / MATCH_TEMPERATURE).softmax(dim=2).view(len(mask), -1, ht, wt)
    score = torch.einsum("bnyx,bnx,bny->bn", probability, near_x, near_y)
    return -(score * mask).mean()


def _select(out: dict, rows: torch.Tensor, direction: str) -> dict:
    """The transformation of ``direction`` for the batch rows ``rows``, keyed as "ab" for transform_points."""
    return {"affine_ab": out[f"affine_{direction}"][rows], "tps_ab": out[f"tps_{direction}"][rows]}


def cycle_consistency(out: dict) -> torch.Tensor:
    """Slides' Eq. 4: mean ‖T_BA(T_AB(p)) − p‖ over the 10×10 points, plus the same from B (normalised
    units, [-1, 1] across the image)."""
    points = consistency_points().to(out["affine_ab"]).expand(len(out["affine_ab"]), -1, -1)
    there_back = transform_points(out, "ba", transform_points(out, "ab", points))
    back_there = transform_points(out, "ab", transform_points(out, "ba", points))
    return (there_back - points).norm(dim=-1).mean() + (back_there - points).norm(dim=-1).mean()


def transitivity_consistency(out: dict, triplets: torch.Tensor) -> torch.Tensor:
    """Slides' Eq. 5: mean ‖T_CA(T_BC(T_AB(p))) − p‖ over the 10×10 points, for ``triplets`` T×3
    batch rows holding the pairs (A, B), (B, C) and (C, A) of each triplet; 0 without triplets."""
    if not len(triplets):
        return out["affine_ab"].sum() * 0
    points = consistency_points().to(out["affine_ab"]).expand(len(triplets), -1, -1)
    moved = points
    for column in range(3):
        moved = transform_points(_select(out, triplets[:, column], "ab"), "ab", moved)
    return (moved - points).norm(dim=-1).mean()


def warp_regression(out: dict, truth: dict) -> torch.Tensor:
    """Rocco et al.'s transformed-grid loss, both ways, for pairs whose B is A seen through a known
    transformation S (``truth``: ``affine_ab``/``tps_ab``, S taking B's points to A's): the mean
    ‖T_BA(p) − S(p)‖ plus the mean ‖T_AB(S(p)) − p‖ over the 10×10 points p of B (normalised units)."""
    points = consistency_points().to(out["affine_ab"]).expand(len(out["affine_ab"]), -1, -1)
    in_a = transform_points(truth, "ab", points)
    return ((transform_points(out, "ba", points) - in_a).norm(dim=-1).mean()
            + (transform_points(out, "ab", in_a) - points).norm(dim=-1).mean())


def _pooled(feats: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """B×C×H×W features averaged with per-cell ``weights`` B×H×W, L2-normalised → B×C."""
    return F.normalize((feats * weights[:, None]).sum(dim=(2, 3)), dim=1)


def perceptual_contrast(out: dict, feats_a: torch.Tensor, feats_b: torch.Tensor, margin: float = CONTRAST_MARGIN) -> torch.Tensor:
    """Slides' Eqs. 6–9 on the frozen backbone's features instead of a second network's: F(I^o) is the
    mean feature under M, F(I^b) under 1 − M, L2-normalised (pooling the cached features, where the
    slides run a ResNet-50 on the masked images: the same frozen, pretrained description of "what is in
    there", at no extra cost). Distances are 1 − cosine (half the squared distance of unit vectors).
    d+ pulls the two objects together; the hinge d− pushes each image's object away from its own
    background. Both are blind to how much the masks cover (normalised descriptors): the descriptors
    of the masked image itself (cells outside adding nothing) let every mask shrink to nothing, which
    our second run did within 150 steps (lab/training.md); normalised, a vanishing background gets a
    descriptor like the object's and d− pushes back."""
    mask_a, mask_b = out["mask_a"], out["mask_b"]
    object_a, object_b = _pooled(feats_a, mask_a), _pooled(feats_b, mask_b)
    background_a, background_b = _pooled(feats_a, 1 - mask_a), _pooled(feats_b, 1 - mask_b)
    d_plus = 1 - (object_a * object_b).sum(1)
    apart = ((1 - (object_a * background_a).sum(1)) + (1 - (object_b * background_b).sum(1))) / 2
    return (d_plus + F.relu(margin - apart)).mean()


def _bce(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Slides' Eq. 11, differentiable in the target too (torch's BCE is not)."""
    return -(target * prediction.log() + (1 - target) * (1 - prediction).log()).mean()


def task_consistency(out: dict) -> torch.Tensor:
    """Slides' Eqs. 10–11: M_A carried into B's frame by the warp (read where T_BA sends each cell of
    B) against M_B, and the other way round. The carried mask is a target: its values are held fixed
    (the warp still learns where to read them). Left free, both masks learn to agree by saturating
    to all ones, which our first run did within 100 steps (lab/training.md)."""
    carried_a = transported_mask(out["mask_a"].detach(), out["flow_ba"])  # on B's grid
    carried_b = transported_mask(out["mask_b"].detach(), out["flow_ab"])
    return _bce(carried_a, out["mask_b"]) + _bce(carried_b, out["mask_a"])


#: How many of an image's most confident mask cells say whether it holds the shared object.
PRESENCE_CELLS = 5


def mask_presence(mask: torch.Tensor) -> torch.Tensor:
    """B×H×W masks → B values: the mean of each image's :data:`PRESENCE_CELLS` highest cells."""
    flat = mask.flatten(1)
    return flat.topk(min(PRESENCE_CELLS, flat.shape[1]), dim=1).values.mean(dim=1)


def macosnet_loss(out: dict, inputs: dict, triplets: torch.Tensor, positives: int, weights: dict) -> dict:
    """MaCoSNet's terms and their weighted ``total``; the first ``positives`` rows of the batch share
    an object, the others (negatives) nothing. Reads only the model's inputs and outputs (weak
    supervision: no mask, no flow)."""
    w = {**MACOSNET_LOSS_WEIGHTS, **weights}
    shared = {k: v[:positives] for k, v in out.items()}
    grid_a, grid_b = tuple(out["mask_a"].shape[1:]), tuple(out["mask_b"].shape[1:])
    terms = {}
    if w["matching"]:
        terms["matching"] = foreground_matching(shared, "ab", grid_a, grid_b) + foreground_matching(shared, "ba", grid_b, grid_a)
    if w["cycle"]:
        terms["cycle"] = cycle_consistency(shared)
    if w["transitivity"]:
        terms["transitivity"] = transitivity_consistency(shared, triplets)
    if w["contrast"]:
        terms["contrast"] = perceptual_contrast(shared, inputs["feats_a"][:positives], inputs["feats_b"][:positives])
    if w["task"]:
        terms["task"] = task_consistency(shared)
    if w["presence"]:
        label = (torch.arange(len(out["mask_a"])) < positives).to(out["mask_a"])
        terms["presence"] = sum(F.binary_cross_entropy(mask_presence(out[k]), label) for k in ("mask_a", "mask_b"))
    terms["total"] = sum(w[k] * terms[k] for k in terms)
    return terms
