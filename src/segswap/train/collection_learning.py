"""`segswap learn`: features learned on the user's own collection, without labels (ArtMiner: Shen, Efros, Aubry,
CVPR 2019), then the pair model adapted to read them (rules L3 and L4 in lab/rules.md).

**Stage 1, features.** Each round, with the current features (the pair model's backbone tail over the index's
stored features, so no image is decoded):

1. **query patches**: ``queries`` random 2×2-cell patches of the collection's images;
2. **candidates**: each patch is correlated with every image's feature map; its ``top`` best placements across
   the collection are its candidates;
3. **spatial consistency**: two candidates of one patch, in two different images, make a pair when the ring of
   a ``valid``×``valid`` region around the first votes for it (each ring cell's best match in the second image
   within one cell of the ring's corresponding cell there), at least ``vote`` of the ring;
4. **training**: the four corners of the larger ``train``×``train`` region are positives P1 → P2, P1's
   ``negatives`` most similar cells in the other image its hard negatives N1, and the loss is ArtMiner's
   max(s(P1, N1), 1 − λ) − min(s(P1, P2), λ), s the cosine similarity, plus ``preserve`` × mean(1 − cos(f, f₀))
   over the two images' cells, f₀ the tail's output before learning.

Only the tail changes (the backbone's last blocks, as the shipped pair model fine-tunes them).

**Stage 2, the pair model adapted.** The transformer was trained to read the shipped tail; it is fine-tuned on
the collection's own mined pairs (mined as above, with the learned tail, frozen now): a pair's target is the
cells of each image whose best match in the other lies within one cell of where the pair's translation puts
it and comes back within one cell (mask 1, flow to that match), every other cell 0; each pair is trained
beside a negative, its first image with one no round has mined with it. SegSwap's loss, Adam at 1e-5.

Measured (lab/rules.md L3, L4; a style collection of 48 images, 10 + 10 minutes on 2 cores): detail retrieval
mAP 0.712 → 0.759, boxes found 0.552 → 0.667, discovery pair precision 0.636 → 1.0 at the same recall; the
learned features alone (stage 1) lost discovery precision (0.636 → 0.447).

The budget (``minutes``, or ``steps`` updates a stage) is split evenly between the stages; a checkpoint after
every round lets a killed run resume; the weights go into the index (:mod:`segswap.collection.learned`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..collection.index import CollectionIndex
from ..collection.learned import LEARNED_DIR, images_hash
from ..errors import SegswapError
from ..io.files import write_bytes_atomic
from ..pair import LEARNED_RECORD, LEARNED_TAIL, LEARNED_TRANSFORMER
from .base_recipe import BASE
from .losses import segswap_loss

#: Stage 1's recipe (rules L2, L3): ArtMiner's own values where our grids allow (its regions are for 20-cell
#: feature maps at its smallest scale, ours are 20–30 cells).
DEFAULT_CONF = {
    "queries": 400,  # query patches per round
    "patch": 2,  # query patch side, cells (ArtMiner's searchRegion)
    "top": 10,  # candidates kept per query patch
    "valid": 6,  # side of the region whose ring votes (ArtMiner: 10)
    "train": 8,  # side of the region whose corners train (ArtMiner: 12)
    "vote": 0.6,  # share of the ring that must vote
    "pairs": 64,  # pairs kept per round (the best voted)
    "lam": 0.8,  # λ of the loss (ArtMiner's tripleLossThreshold)
    "negatives": 10,  # hard negatives averaged per positive (ArtMiner's topKLoss)
    "batch": 4,  # pairs per update
    "lr": 1e-5,  # Adam, betas (0.5, 0.999), as ArtMiner
    "preserve": 1.0,  # μ: weight of mean(1 − cos(f, f₀)) keeping the features the pair model was trained on
}
#: Rounds in a row that mine no pair before learning stops early.
EMPTY_ROUNDS = 5


def _ring(side: int) -> np.ndarray:
    """(row, col) of the border cells of a side×side square, relative to its top-left cell."""
    cells = [(r, c) for r in range(side) for c in range(side) if r in (0, side - 1) or c in (0, side - 1)]
    return np.array(cells, dtype=np.int64)


def _corners(side: int) -> np.ndarray:
    return np.array([(0, 0), (0, side - 1), (side - 1, 0), (side - 1, side - 1)], dtype=np.int64)


class CollectionFeatures:
    """The index's stored features (float32, in memory) and the tail over them."""

    def __init__(self, index: CollectionIndex, tail: torch.nn.Module, keep_initial: bool = True):
        self.ids = [image.id for image in index.images()]
        self.raw = [torch.from_numpy(np.asarray(index.features(i), np.float32)) for i in self.ids]
        self.tail = tail
        # f₀: what the pair model's transformer was trained to read (copies usable by autograd)
        self.shipped = [f.clone() for f in self.current()] if keep_initial else []

    @torch.inference_mode()
    def current(self) -> list[torch.Tensor]:
        """Every image's C×h×w unit features through the tail as it is now."""
        self.tail.eval()
        return [self.tail(f[None])[0] for f in self.raw]


def mine_pairs(feats: list[torch.Tensor], conf: dict, rng: np.random.Generator) -> list[tuple]:
    """Steps 1–3 of the module docstring → up to ``conf["pairs"]`` (image a, (row, col) of a's train
    region's top-left, image b, the same in b, votes), best voted first."""
    p, valid, train = conf["patch"], conf["valid"], conf["train"]
    fits = [k for k, f in enumerate(feats) if min(f.shape[1:]) >= train]
    if len(fits) < 2:
        return []
    queries = []
    for _ in range(conf["queries"]):
        k = int(rng.choice(fits))
        _, h, w = feats[k].shape
        r, c = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        queries.append(feats[k][:, r:r + p, c:c + p])
    kernels = torch.stack(queries) / (p * p)  # Q×C×p×p: the mean cosine over the patch's cells
    # Per image, each query's best placement: Q scores and (row, col) of the patch's top-left.
    best_score = torch.full((len(queries), len(feats)), -2.0)
    best_at = torch.zeros((len(queries), len(feats), 2), dtype=torch.long)
    for k in fits:
        with torch.inference_mode():
            response = F.conv2d(feats[k][None], kernels)[0]  # Q×(h-p+1)×(w-p+1)
        flat = response.flatten(1)
        score, where = flat.max(dim=1)
        best_score[:, k] = score
        best_at[:, k, 0], best_at[:, k, 1] = where // response.shape[2], where % response.shape[2]
    top = best_score.topk(min(conf["top"], len(fits)), dim=1).indices  # Q×top images
    ring = _ring(valid)
    found = []
    for q in range(len(queries)):
        candidates = [int(k) for k in top[q]]
        for _ in range(3):  # ArtMiner draws one pair per query; three draws give rounds enough pairs on small collections
            a, b = rng.choice(candidates, 2, replace=False)
            if a == b:
                continue
            region_a = _region(best_at[q, a], feats[a].shape[1:], p, train)
            region_b = _region(best_at[q, b], feats[b].shape[1:], p, train)
            if region_a is None or region_b is None:
                continue
            votes = _votes(feats[a], feats[b], region_a, region_b, ring, (train - valid) // 2)
            if votes >= conf["vote"] * len(ring):
                found.append((int(a), region_a, int(b), region_b, votes))
    found.sort(key=lambda item: -item[4])
    return found[:conf["pairs"]]


def _region(patch_at: torch.Tensor, grid: tuple[int, int], patch: int, side: int) -> tuple[int, int] | None:
    """Top-left (row, col) of the side×side region centred on a patch placed at ``patch_at``, or None if
    it does not fit in ``grid``."""
    h, w = grid
    r = int(patch_at[0]) + patch // 2 - side // 2
    c = int(patch_at[1]) + patch // 2 - side // 2
    return (r, c) if 0 <= r <= h - side and 0 <= c <= w - side else None


@torch.inference_mode()
def _votes(fa: torch.Tensor, fb: torch.Tensor, region_a, region_b, ring: np.ndarray, inset: int) -> int:
    """How many ring cells of a's validation region (``inset`` cells inside its train region) have their
    best match in b within one cell of the corresponding ring cell of b's."""
    cells_a = ring + np.array(region_a) + inset
    cells_b = ring + np.array(region_b) + inset
    query = fa[:, cells_a[:, 0], cells_a[:, 1]].T  # R×C
    similarity = query @ fb.flatten(1)  # R×(h·w)
    where = similarity.argmax(dim=1).numpy()
    rows, cols = where // fb.shape[2], where % fb.shape[2]
    return int(((np.abs(rows - cells_b[:, 0]) <= 1) & (np.abs(cols - cells_b[:, 1]) <= 1)).sum())


def pair_similarities(fa: torch.Tensor, fb: torch.Tensor, region_a, region_b, conf: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 4: s(P1, P2) and s(P1, N1) at the four corners of the pair's train regions (4 each)."""
    corners = _corners(conf["train"])
    positives, negatives = [], []
    _, hb, wb = fb.shape
    for r, c in corners:
        ra, ca = region_a[0] + r, region_a[1] + c
        rb, cb = region_b[0] + r, region_b[1] + c
        p1, p2 = fa[:, ra, ca], fb[:, rb, cb]
        around = fb[:, max(0, rb - 1):rb + 2, max(0, cb - 1):cb + 2].flatten(1)
        positives.append((p1 @ around).max())
        hard_ab = (p1 @ fb.flatten(1)).topk(min(conf["negatives"], hb * wb)).values.mean()
        hard_ba = (p2 @ fa.flatten(1)).topk(min(conf["negatives"], fa.shape[1] * fa.shape[2])).values.mean()
        negatives.append(torch.maximum(hard_ab, hard_ba))
    return torch.stack(positives), torch.stack(negatives)


def artminer_loss(positive: torch.Tensor, negative: torch.Tensor, lam: float) -> torch.Tensor:
    """max(s(P1, N1), 1 − λ) − min(s(P1, P2), λ), shifted to be 0 when satisfied (ArtMiner's code)."""
    return (torch.clamp(negative + lam - 1, min=0) + torch.clamp(lam - positive, min=0)).mean()


@torch.no_grad()
def pair_targets(fa: torch.Tensor, fb: torch.Tensor, region_a, region_b) -> dict[str, torch.Tensor]:
    """Rule L4's target of a mined pair: cells whose best match in the other image lies within one cell of
    where the pair's translation puts them and comes back within one cell (mask 1, flow to that match)."""
    (_, ha, wa), (_, hb, wb) = fa.shape, fb.shape
    shift = (region_b[0] - region_a[0], region_b[1] - region_a[1])
    sim = fa.flatten(1).T @ fb.flatten(1)  # (ha·wa)×(hb·wb)
    ab, ba = sim.argmax(1), sim.argmax(0)
    rows_a, cols_a = torch.div(torch.arange(ha * wa), wa, rounding_mode="floor"), torch.arange(ha * wa) % wa
    rb, cb = torch.div(ab, wb, rounding_mode="floor"), ab % wb
    back = ba[ab]
    ok_a = ((rb - rows_a - shift[0]).abs() <= 1) & ((cb - cols_a - shift[1]).abs() <= 1) & \
        ((torch.div(back, wa, rounding_mode="floor") - rows_a).abs() <= 1) & ((back % wa - cols_a).abs() <= 1)
    rows_b, cols_b = torch.div(torch.arange(hb * wb), wb, rounding_mode="floor"), torch.arange(hb * wb) % wb
    ra, ca = torch.div(ba, wa, rounding_mode="floor"), ba % wa
    forth = ab[ba]
    ok_b = ((rows_b - ra - shift[0]).abs() <= 1) & ((cols_b - ca - shift[1]).abs() <= 1) & \
        ((torch.div(forth, wb, rounding_mode="floor") - rows_b).abs() <= 1) & ((forth % wb - cols_b).abs() <= 1)
    flow_ab = torch.stack([(cb + 0.5) / wb, (rb + 0.5) / hb], dim=-1).float().reshape(ha, wa, 2)
    flow_ba = torch.stack([(ca + 0.5) / wa, (ra + 0.5) / ha], dim=-1).float().reshape(hb, wb, 2)
    return {"mask_a": ok_a.float().reshape(ha, wa), "mask_b": ok_b.float().reshape(hb, wb),
            "flow_ab": flow_ab, "flow_ba": flow_ba}


#: Stage 2 (rule L4): Adam's rate (SegSwap's hard-negative stage) and mined pairs an update (each with a negative).
ADAPT_CONF = {"lr": 1e-5, "positives": 4}
#: The default budget: about 20 minutes for 1,000 images on 2 cores (the issue's), split between the stages.
DEFAULT_MINUTES = 20.0
FEATURES_CHECKPOINT = "features_checkpoint.safetensors"
ADAPT_CHECKPOINT = "adapt_checkpoint.safetensors"


@dataclass
class LearnSummary:
    steps: tuple[int, int]  # updates of each stage
    rounds: tuple[int, int]
    pairs: tuple[int, int]  # pairs mined in each stage
    seconds: float
    resumed: bool  # a checkpoint of an interrupted run was continued
    positive_similarity: float  # stage 1's last round: mean s(P1, P2)
    negative_similarity: float  # and mean s(P1, N1)

    def line(self) -> str:
        return (f"learned the features in {self.steps[0]} updates ({self.pairs[0]} mined pairs), adapted the pair model "
                f"in {self.steps[1]} ({self.pairs[1]} mined pairs), {self.seconds:.0f} s"
                + (", resumed" if self.resumed else "")
                + f"; last round: positives {self.positive_similarity:.3f}, hard negatives {self.negative_similarity:.3f}")


def check_learnable(index: CollectionIndex, matcher) -> None:
    """Refuse, in one line and before any work, what cannot be learned on."""
    if getattr(matcher.model, "tail", None) is None or matcher.weights_sha256 is None:
        raise SegswapError(f"segswap learn adapts the shipped SegSwap model's backbone tail; {matcher.name} "
                           f"({matcher.weights}) has none")
    if matcher.backbone.name != index.backbone:
        raise SegswapError(f"{index.path} holds {index.backbone} features; the model runs on {matcher.backbone.name} "
                           f"(index the folder again with --backbone {matcher.backbone.name})")
    side = DEFAULT_CONF["train"]
    fits = sum(1 for image in index.images() if min(index.features(image.id).shape[1:]) >= side)
    if fits < 2:
        raise SegswapError(f"{index.path}: learning needs at least two images of {side}×{side} cells or more "
                           f"(about {side * 16} px at the index's scale); it holds {fits}")


def learn_collection(index: CollectionIndex, matcher, *, minutes: float = DEFAULT_MINUTES, steps: int | None = None,
                     seed: int = 0, show_progress: bool = True) -> LearnSummary:
    """Learn on ``index`` (module docstring) with ``matcher`` (the shipped pair model) for ``minutes`` in all, or
    ``steps`` updates a stage, and write the weights into the index. ``matcher``'s model is changed in place."""
    check_learnable(index, matcher)
    model = matcher.model
    model.tail.onnx = None  # training runs the PyTorch blocks
    folder = index.path / LEARNED_DIR
    folder.mkdir(exist_ok=True)
    signature = {"images": images_hash(index), "seed": seed, "conf": DEFAULT_CONF, "adapt": ADAPT_CONF,
                 "base_weights_sha256": matcher.weights_sha256}
    budget = minutes * 60 / 2
    first = learn_features(index, model.tail, folder, signature, budget, steps, seed, show_progress)
    second = _adapt(index, model, folder, signature, budget, steps, seed, show_progress)
    seconds = first["seconds"] + second["seconds"]
    tail_file = _save(folder / LEARNED_TAIL, model.tail.state_dict(), signature)
    _save(folder / LEARNED_TRANSFORMER, {k: v for k, v in model.state_dict().items() if not k.startswith("tail.")},
          signature)
    record = {"images_hash": signature["images"], "base_weights_sha256": matcher.weights_sha256, "seed": seed,
              "images": len(index), "conf": DEFAULT_CONF, "adapt": ADAPT_CONF,
              "stages": {"features": first, "adapt": second}, "seconds": round(seconds, 1),
              "tail_sha256": hashlib.sha256(tail_file).hexdigest()}
    write_bytes_atomic(folder / LEARNED_RECORD, json.dumps(record, indent=1).encode())
    return LearnSummary((first["steps"], second["steps"]), (first["rounds"], second["rounds"]),
                        (first["pairs"], second["pairs"]), seconds, first["resumed"] or second["resumed"],
                        first["positive_similarity"], first["negative_similarity"])


def _save(path: Path, tensors: dict, signature: dict) -> bytes:
    from safetensors.torch import save

    data = save({k: v.detach().contiguous() for k, v in tensors.items()},
                metadata={"images": signature["images"], "base_weights_sha256": signature["base_weights_sha256"]})
    write_bytes_atomic(path, data)
    return data


def _progress(total_seconds: float, steps: int | None, done: int, spent: float, desc: str, show: bool) -> tqdm:
    return tqdm(total=steps if steps is not None else int(total_seconds), initial=done if steps is not None else int(spent),
                unit="update" if steps is not None else "s", desc=desc if steps is not None else f"{desc} (budget in s)",
                disable=not show)


def learn_features(index, tail, folder: Path, signature: dict, budget: float, steps: int | None, seed: int,
                   show_progress: bool, conf: dict = DEFAULT_CONF) -> dict:
    """Stage 1 (module docstring): ``tail`` learned in place for ``budget`` seconds or ``steps`` updates, its
    checkpoint in ``folder`` (continued when made for ``signature``); its progress."""
    optimizer = torch.optim.Adam(tail.parameters(), lr=conf["lr"], betas=(0.5, 0.999))
    data = CollectionFeatures(index, tail)  # before resuming: f₀ is the tail as given
    state = _resume(folder / FEATURES_CHECKPOINT, signature, tail, optimizer, tail.parameters())
    done, rounds, mined, spent = state["steps"], state["rounds"], state["pairs"], state["seconds"]
    resumed = done > 0
    start = time.perf_counter() - spent
    progress = _progress(budget, steps, done, spent, "learning the features", show_progress)
    positive, negative = state.get("positive", float("nan")), state.get("negative", float("nan"))
    empty = 0
    while (done < steps) if steps is not None else (time.perf_counter() - start < budget):
        rng = np.random.default_rng([seed, rounds])
        torch.manual_seed(seed * 100003 + rounds)
        pairs = mine_pairs(data.current(), conf, rng)
        rounds += 1
        empty = 0 if pairs else empty + 1
        if not pairs and (mined == 0 or empty >= EMPTY_ROUNDS):
            if mined == 0:
                progress.close()
                raise SegswapError(f"{index.path}: no consistent pairs to learn from (each needs two images sharing a "
                                   f"region of {conf['train']}×{conf['train']} cells); learn on a collection with repeats")
            break  # the collection has nothing left to teach at this point: keep what was learned
        mined += len(pairs)
        tail.train()
        sims = []
        order = rng.permutation(len(pairs))
        for first in range(0, len(order), conf["batch"]):
            if (steps is not None and done >= steps) or (steps is None and time.perf_counter() - start >= budget):
                break
            losses = []
            for k in order[first:first + conf["batch"]]:
                a, region_a, b, region_b, _ = pairs[k]
                fa, fb = tail(data.raw[a][None])[0], tail(data.raw[b][None])[0]
                pos, neg = pair_similarities(fa, fb, region_a, region_b, conf)
                drift = sum((1 - (f * data.shipped[i]).sum(0)).mean() for f, i in ((fa, a), (fb, b))) / 2
                losses.append(artminer_loss(pos, neg, conf["lam"]) + conf["preserve"] * drift)
                sims.append((float(pos.detach().mean()), float(neg.detach().mean())))
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            if loss.item() > 0:
                loss.backward()
                optimizer.step()
            done += 1
            progress.n = done if steps is not None else int(time.perf_counter() - start)
            progress.set_postfix_str(f"round {rounds}, {mined} pairs", refresh=True)
        if sims:
            positive, negative = (float(v) for v in np.mean(sims, axis=0))
        _checkpoint(folder / FEATURES_CHECKPOINT, signature, tail, optimizer, tail.parameters(),
                    {"steps": done, "rounds": rounds, "pairs": mined, "seconds": time.perf_counter() - start,
                     "positive": positive, "negative": negative})
    progress.close()
    tail.eval()
    return {"steps": done, "rounds": rounds, "pairs": mined, "seconds": round(time.perf_counter() - start, 1),
            "resumed": resumed, "positive_similarity": positive, "negative_similarity": negative}


def _adapt(index, model, folder: Path, signature: dict, budget: float, steps: int | None, seed: int,
           show_progress: bool) -> dict:
    """Stage 2 (module docstring): ``model``'s transformer adapted in place, its learned tail frozen."""
    model.tail.requires_grad_(False)
    params = [p for name, p in model.named_parameters() if not name.startswith("tail.")]
    optimizer = torch.optim.Adam(params, lr=ADAPT_CONF["lr"], betas=(0.5, 0.999))
    data = CollectionFeatures(index, model.tail, keep_initial=False)
    state = _resume(folder / ADAPT_CHECKPOINT, signature, model, optimizer, params, skip="tail.")
    done, rounds, mined, spent = state["steps"], state["rounds"], state["pairs"], state["seconds"]
    partners = {tuple(p) for p in state.get("partners", [])}
    resumed = done > 0
    start = time.perf_counter() - spent
    progress = _progress(budget, steps, done, spent, "adapting the pair model", show_progress)
    feats = [f.clone() for f in data.current()]  # outside inference mode: the targets are built from them
    while (done < steps) if steps is not None else (time.perf_counter() - start < budget):
        rng = np.random.default_rng([seed, 7, rounds])
        torch.manual_seed(seed * 100019 + rounds)
        pairs = mine_pairs(feats, DEFAULT_CONF, rng)
        rounds += 1
        if not pairs:
            break  # the features mined pairs in stage 1; none now means the tail holds nothing to adapt to
        mined += len(pairs)
        partners |= {(a, b) for a, _, b, _, _ in pairs} | {(b, a) for a, _, b, _, _ in pairs}
        model.train()
        model.tail.train(False)
        for first in range(0, len(pairs), ADAPT_CONF["positives"]):
            if (steps is not None and done >= steps) or (steps is None and time.perf_counter() - start >= budget):
                break
            losses = []
            for a, region_a, b, region_b, _ in pairs[first:first + ADAPT_CONF["positives"]]:
                strangers = [c for c in range(len(feats)) if c != a and (a, c) not in partners]
                examples = [(b, pair_targets(feats[a], feats[b], region_a, region_b))]
                if strangers:
                    examples.append((int(rng.choice(strangers)), None))
                for other, target in examples:
                    out = model({"feats_a": data.raw[a][None], "feats_b": data.raw[other][None]})
                    if target is None:
                        (ha, wa), (hb, wb) = data.raw[a].shape[1:], data.raw[other].shape[1:]
                        target = {"mask_a": torch.zeros(ha, wa), "mask_b": torch.zeros(hb, wb),
                                  "flow_ab": torch.zeros(ha, wa, 2), "flow_ba": torch.zeros(hb, wb, 2)}
                    out = {k: v for k, v in out.items() if k != "match_logits"}
                    losses.append(segswap_loss(out, {k: v[None] for k, v in target.items()}, BASE["loss_weights"])["total"])
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            progress.n = done if steps is not None else int(time.perf_counter() - start)
            progress.set_postfix_str(f"round {rounds}, loss {loss.item():.3f}", refresh=True)
        _checkpoint(folder / ADAPT_CHECKPOINT, signature, model, optimizer, params,
                    {"steps": done, "rounds": rounds, "pairs": mined, "seconds": time.perf_counter() - start,
                     "partners": sorted(partners)}, skip="tail.")
    progress.close()
    model.eval()
    return {"steps": done, "rounds": rounds, "pairs": mined, "seconds": round(time.perf_counter() - start, 1),
            "resumed": resumed}


def _checkpoint(path: Path, signature: dict, module: torch.nn.Module, optimizer, params, progress: dict,
                skip: str | None = None) -> None:
    from safetensors.torch import save

    tensors = {f"module.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()
               if skip is None or not k.startswith(skip)}
    for k, param in enumerate(params):  # Adam's state is keyed by parameter: stored by its position
        for name, value in optimizer.state.get(param, {}).items():
            tensors[f"adam.{k}.{name}"] = torch.as_tensor(value).detach().clone().contiguous()
    metadata = {"signature": json.dumps(signature, sort_keys=True), "progress": json.dumps(progress)}
    write_bytes_atomic(path, save(tensors, metadata=metadata))


def _resume(path: Path, signature: dict, module: torch.nn.Module, optimizer, params, skip: str | None = None) -> dict:
    """Load the checkpoint at ``path`` into ``module`` and ``optimizer`` if it was made for ``signature``; its
    progress (a fresh start otherwise, a damaged checkpoint included: it is rewritten after the first round)."""
    from safetensors import safe_open

    fresh = {"steps": 0, "rounds": 0, "pairs": 0, "seconds": 0.0}
    if not path.is_file():
        return fresh
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("signature") != json.dumps(signature, sort_keys=True):
                return fresh
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception:
        return fresh
    module.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("module.")}, strict=skip is None)
    for k, param in enumerate(list(params)):
        slot = {name.split(".", 2)[2]: v for name, v in tensors.items() if name.startswith(f"adam.{k}.")}
        if slot:
            optimizer.state[param] = slot
    return json.loads(metadata["progress"])
