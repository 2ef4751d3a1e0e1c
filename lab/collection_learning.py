"""ArtMiner's self-supervised feature learning (Shen, Efros, Aubry, CVPR 2019) on an index — measured, not shipped.

    .venv/bin/python lab/style_collection.py --out W/style_dev
    segswap eval details W/style_dev --work W/style_work         # before (indexes the collection)
    segswap eval discover W/style_dev --work W/style_work
    .venv/bin/python lab/collection_learning.py learn --index W/style_work/index --minutes 10 --seed 0 [--preserve 0]
    .venv/bin/python lab/collection_learning.py eval W/style_dev --work W/style_work   # after, with the learned tail

Rules L1 and L2 (lab/rules.md): learning on the style collection did not raise detail retrieval (mAP 0.947 →
0.929 with ArtMiner's loss alone, → 0.948 with the term keeping the pair model's reading) and loosened
discovery (pair precision 0.684 → 0.287 / 0.443), so `segswap learn` left the library; this is its code.

No labels and no training data: the collection teaches its own invariances. Each round, with the current
features (the pair model's backbone tail over the index's stored features):

1. **query patches**: ``queries`` random 2×2-cell patches of the collection's images;
2. **candidates**: each patch is correlated with every image's feature map; its ``top`` best
   placements across the collection (its own one included) are its candidates;
3. **spatial consistency**: two candidates of one patch, in two different images, make a pair when the
   ring of a ``valid``×``valid`` region around the first votes for it: each ring cell's best match in
   the second image must fall within one cell of the ring's corresponding cell there; the pair is kept
   when at least ``vote`` of the ring votes;
4. **training**: for each kept pair, the four corners of the larger ``train``×``train`` region (cells the
   vote did not use) are positives P1 → P2 (P2: the best of the 3×3 cells around the corresponding
   corner), and P1's ``negatives`` most similar cells anywhere in the other image are its hard negatives
   N1 (both directions; the harder is kept). The loss is ArtMiner's
   ``max(s(P1, N1), 1 − λ) − min(s(P1, P2), λ)`` (up to a constant), s the cosine similarity, plus
   ``preserve`` × the mean of 1 − cos(f, f₀) over the two images' cells, f₀ the tail's output before
   learning: the pair model's transformer was trained to read f₀.

Only the tail's weights change (the last ``tail_blocks`` blocks of the backbone, as the shipped pair model
fine-tunes them); the index's stored features are their input, so no image is decoded. The result is
written into the index (``learned/tail.safetensors`` with the hash of the images it learned from, and
``learned/learned.json``: what it learned from); a checkpoint after every round lets a killed run resume.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from segswap.collection.index import CollectionIndex
from segswap.errors import SegswapError
from segswap.io.files import write_bytes_atomic

LEARNED_DIR = "learned"
LEARNED_WEIGHTS = "tail.safetensors"
LEARNED_RECORD = "learned.json"


def images_hash(index: CollectionIndex) -> str:
    """SHA-1 over the index's images (each relative path and content hash, in path order)."""
    digest = hashlib.sha1()
    for path, sha1 in index.db.execute("SELECT path, sha1 FROM images ORDER BY path"):
        digest.update(f"{path}\0{sha1}\n".encode())
    return digest.hexdigest()

#: The shipped recipe; keyword arguments of :func:`learn` override it. ArtMiner's own values where our
#: grids allow (its regions are for 20-cell feature maps at its smallest scale, ours are 20–30 cells).
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
    "epochs_per_round": 1,  # passes over a round's pairs before mining again
    "preserve": 1.0,  # μ: weight of mean(1 − cos(f, f₀)) keeping the features the pair model was trained on
}
CHECKPOINT = "checkpoint.safetensors"
#: Rounds in a row that mine no pair before learning stops early.
EMPTY_ROUNDS = 5


@dataclass
class LearnSummary:
    steps: int
    rounds: int
    pairs: int  # training pairs mined, over all rounds
    seconds: float
    resumed_from: int  # steps done before this run (0: a fresh start)
    positive_similarity: float  # mean s(P1, P2) over the last round
    negative_similarity: float  # mean s(P1, N1) over the last round

    def line(self) -> str:
        return (f"learned for {self.steps} steps in {self.rounds} rounds ({self.pairs} mined pairs) in "
                f"{self.seconds:.0f} s" + (f", resumed after step {self.resumed_from}" if self.resumed_from else "")
                + f"; last round: positives {self.positive_similarity:.3f}, hard negatives {self.negative_similarity:.3f}")


def _ring(side: int) -> np.ndarray:
    """(row, col) of the border cells of a side×side square, relative to its top-left cell."""
    cells = [(r, c) for r in range(side) for c in range(side) if r in (0, side - 1) or c in (0, side - 1)]
    return np.array(cells, dtype=np.int64)


def _corners(side: int) -> np.ndarray:
    return np.array([(0, 0), (0, side - 1), (side - 1, 0), (side - 1, side - 1)], dtype=np.int64)


class CollectionFeatures:
    """The index's stored features (float32, in memory) and the tail over them."""

    def __init__(self, index: CollectionIndex, tail: torch.nn.Module):
        self.ids = [image.id for image in index.images()]
        self.raw = [torch.from_numpy(np.asarray(index.features(i), np.float32)) for i in self.ids]
        self.tail = tail
        # f₀: what the pair model's transformer was trained to read (copies usable by autograd)
        self.shipped = [f.clone() for f in self.current()]

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


def learn(index: CollectionIndex, tail: torch.nn.Module, *, minutes: float = 20.0, steps: int | None = None,
          seed: int = 0, show_progress: bool = True, **overrides) -> LearnSummary:
    """Fine-tune ``tail`` (a :class:`~segswap.models.tail.BackboneTail` fed by the index's features) on
    pairs mined from ``index`` (module docstring) until ``minutes`` or ``steps`` is reached, then write
    it into the index. Resumes from the index's checkpoint when it was made with the same images, seed
    and settings."""
    conf = {**DEFAULT_CONF, **overrides}
    unknown = set(overrides) - set(DEFAULT_CONF)
    if unknown:
        raise SegswapError(f"learn: unknown option(s) {', '.join(sorted(unknown))}")
    folder = index.path / LEARNED_DIR
    folder.mkdir(exist_ok=True)
    signature = {"images": images_hash(index), "seed": seed, "conf": conf}
    optimizer = torch.optim.Adam(tail.parameters(), lr=conf["lr"], betas=(0.5, 0.999))
    data = CollectionFeatures(index, tail)  # before resuming: f₀ is the tail as given
    state = _resume(folder, signature, tail, optimizer)
    done, rounds, mined, spent = state["steps"], state["rounds"], state["pairs"], state["seconds"]
    resumed_from = done
    budget = minutes * 60
    start = time.perf_counter() - spent
    progress = tqdm(total=steps if steps is not None else int(budget), initial=done if steps is not None else int(spent),
                    unit="step" if steps is not None else "s", desc="learning (budget in seconds)" if steps is None
                    else "learning", disable=not show_progress)
    positive = negative = float("nan")
    empty = 0
    while (steps is None or done < steps) and time.perf_counter() - start < budget:
        rng = np.random.default_rng([seed, rounds])
        torch.manual_seed(seed * 100003 + rounds)
        pairs = mine_pairs(data.current(), conf, rng)
        rounds += 1
        empty = 0 if pairs else empty + 1
        if not pairs and (mined == 0 or empty >= EMPTY_ROUNDS):
            progress.close()
            if mined == 0:
                raise SegswapError(f"{index.path}: no consistent pairs to learn from (each needs two images sharing a "
                                   f"region of {conf['train']}×{conf['train']} cells); index a collection with repeats")
            break  # the collection has nothing left to teach at this point: keep what was learned
        mined += len(pairs)
        tail.train()
        sims = []
        for _ in range(conf["epochs_per_round"]):
            order = rng.permutation(len(pairs))
            for first in range(0, len(order), conf["batch"]):
                if (steps is not None and done >= steps) or time.perf_counter() - start >= budget:
                    break
                losses = []
                for k in order[first:first + conf["batch"]]:
                    a, region_a, b, region_b, _ = pairs[k]
                    fa, fb = tail(data.raw[a][None])[0], tail(data.raw[b][None])[0]
                    pos, neg = pair_similarities(fa, fb, region_a, region_b, conf)
                    drift = sum((1 - (f * data.shipped[k]).sum(0)).mean() for f, k in ((fa, a), (fb, b))) / 2
                    losses.append(artminer_loss(pos, neg, conf["lam"]) + conf["preserve"] * drift)
                    sims.append((float(pos.detach().mean()), float(neg.detach().mean())))
                loss = torch.stack(losses).mean()
                optimizer.zero_grad()
                if loss.item() > 0:
                    loss.backward()
                    optimizer.step()
                done += 1
                progress.n = done if steps is not None else int(time.perf_counter() - start)
                progress.set_postfix_str(f"step {done}, round {rounds}", refresh=True)
        if sims:
            positive, negative = (float(v) for v in np.mean(sims, axis=0))
        _checkpoint(folder, signature, tail, optimizer, {"steps": done, "rounds": rounds, "pairs": mined,
                                                       "seconds": time.perf_counter() - start})
    progress.close()
    seconds = time.perf_counter() - start
    _write_learned(folder, signature, tail, {"steps": done, "rounds": rounds, "pairs": mined, "seconds": round(seconds, 1),
                                            "positive_similarity": positive, "negative_similarity": negative,
                                            "images": len(data.ids)})
    return LearnSummary(done, rounds, mined, seconds, resumed_from, positive, negative)


ADAPTED_WEIGHTS = "transformer.safetensors"
ADAPT_CHECKPOINT = "adapt_checkpoint.safetensors"
#: Rule L4: Adam's rate (SegSwap's hard-negative stage), mined pairs and negatives an update.
ADAPT_CONF = {"lr": 1e-5, "positives": 4, "negatives": 4}


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


def adapt(index: CollectionIndex, model: torch.nn.Module, *, minutes: float = 10.0, seed: int = 0,
          show_progress: bool = True) -> dict:
    """Rule L4: fine-tune ``model``'s transformer (its tail holds the index's learned weights, frozen) on pairs
    mined from ``index`` with the learned features, each beside a negative; written into the index."""
    from segswap.train.base_recipe import BASE
    from segswap.train.losses import segswap_loss

    conf = {**DEFAULT_CONF}
    folder = index.path / LEARNED_DIR
    model.tail.requires_grad_(False)
    params = [p for name, p in model.named_parameters() if not name.startswith("tail.")]
    optimizer = torch.optim.Adam(params, lr=ADAPT_CONF["lr"], betas=(0.5, 0.999))
    data = CollectionFeatures(index, model.tail)
    signature = {"images": images_hash(index), "seed": seed, "conf": conf, "adapt": ADAPT_CONF,
                 "tail": hashlib.sha1((folder / LEARNED_WEIGHTS).read_bytes()).hexdigest()}
    state = _resume_adapt(folder, signature, model, optimizer)
    done, rounds, spent = state["steps"], state["rounds"], state["seconds"]
    partners = {tuple(p) for p in state.get("partners", [])}
    start = time.perf_counter() - spent
    budget = minutes * 60
    progress = tqdm(total=int(budget), initial=int(spent), unit="s", desc="adapting (budget in seconds)",
                    disable=not show_progress)
    feats = [f.clone() for f in data.current()]  # outside inference mode: targets are built from them
    n = len(feats)
    while time.perf_counter() - start < budget:
        rng = np.random.default_rng([seed, 7, rounds])
        pairs = mine_pairs(feats, conf, rng)
        rounds += 1
        partners |= {(a, b) for a, _, b, _, _ in pairs} | {(b, a) for a, _, b, _, _ in pairs}
        for first in range(0, len(pairs), ADAPT_CONF["positives"]):
            if time.perf_counter() - start >= budget:
                break
            model.train()
            model.tail.train(False)
            losses = []
            for a, region_a, b, region_b, _ in pairs[first:first + ADAPT_CONF["positives"]]:
                target = pair_targets(feats[a], feats[b], region_a, region_b)
                strangers = [c for c in range(n) if c != a and (a, c) not in partners]
                c = int(rng.choice(strangers)) if strangers else None
                for other, tgt in ((b, target), (c, None)):
                    if other is None:
                        continue
                    out = model({"feats_a": data.raw[a][None], "feats_b": data.raw[other][None]})
                    if tgt is None:
                        hb, wb = data.raw[other].shape[1:]
                        ha, wa = data.raw[a].shape[1:]
                        tgt = {"mask_a": torch.zeros(ha, wa), "mask_b": torch.zeros(hb, wb),
                               "flow_ab": torch.zeros(ha, wa, 2), "flow_ba": torch.zeros(hb, wb, 2)}
                    batch_target = {k: v[None] for k, v in tgt.items()}
                    out = {k: v for k, v in out.items() if k != "match_logits"}
                    losses.append(segswap_loss(out, batch_target, BASE["loss_weights"])["total"])
            loss = torch.stack(losses).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            progress.n = int(time.perf_counter() - start)
            progress.set_postfix_str(f"step {done}, round {rounds}, loss {loss.item():.3f}", refresh=True)
        _checkpoint_adapt(folder, signature, model, optimizer, {"steps": done, "rounds": rounds,
                                                                "seconds": time.perf_counter() - start,
                                                                "partners": sorted(partners)})
    progress.close()
    from safetensors.torch import save

    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith("tail.")}
    write_bytes_atomic(folder / ADAPTED_WEIGHTS, save(weights, metadata={"images": signature["images"]}))
    return {"steps": done, "rounds": rounds, "seconds": round(time.perf_counter() - start, 1)}


def _checkpoint_adapt(folder: Path, signature: dict, model, optimizer, progress: dict) -> None:
    from safetensors.torch import save

    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items() if not k.startswith("tail.")}
    params = [p for name, p in model.named_parameters() if not name.startswith("tail.")]
    for k, param in enumerate(params):
        for name, value in optimizer.state.get(param, {}).items():
            tensors[f"adam.{k}.{name}"] = torch.as_tensor(value).detach().clone().contiguous()
    metadata = {"signature": json.dumps(signature, sort_keys=True), "progress": json.dumps(progress)}
    write_bytes_atomic(folder / ADAPT_CHECKPOINT, save(tensors, metadata=metadata))


def _resume_adapt(folder: Path, signature: dict, model, optimizer) -> dict:
    from safetensors import safe_open

    fresh = {"steps": 0, "rounds": 0, "seconds": 0.0}
    path = folder / ADAPT_CHECKPOINT
    if not path.is_file():
        return fresh
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("signature") != json.dumps(signature, sort_keys=True):
            return fresh
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
    params = [p for name, p in model.named_parameters() if not name.startswith("tail.")]
    for k, param in enumerate(params):
        slot = {name.split(".", 2)[2]: v for name, v in tensors.items() if name.startswith(f"adam.{k}.")}
        if slot:
            optimizer.state[param] = slot
    return json.loads(metadata["progress"])


def _tensors(tail: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    found = {f"tail.{k}": v.detach().clone().contiguous() for k, v in tail.state_dict().items()}
    for k, param in enumerate(tail.parameters()):  # Adam's state is keyed by parameter: stored by its position
        for name, value in optimizer.state.get(param, {}).items():
            found[f"adam.{k}.{name}"] = torch.as_tensor(value).detach().clone().contiguous()
    return found


def _checkpoint(folder: Path, signature: dict, tail, optimizer, progress: dict) -> None:
    from safetensors.torch import save

    metadata = {"signature": json.dumps(signature, sort_keys=True), "progress": json.dumps(progress)}
    write_bytes_atomic(folder / CHECKPOINT, save(_tensors(tail, optimizer), metadata=metadata))


def _resume(folder: Path, signature: dict, tail, optimizer) -> dict:
    """Load the checkpoint into ``tail`` and ``optimizer`` if it was made for ``signature``; its progress."""
    from safetensors import safe_open

    fresh = {"steps": 0, "rounds": 0, "pairs": 0, "seconds": 0.0}
    path = folder / CHECKPOINT
    if not path.is_file():
        return fresh
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("signature") != json.dumps(signature, sort_keys=True):
                return fresh
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # a damaged checkpoint: start afresh (it is rewritten after the first round)
        return fresh
    tail.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("tail.")})
    for k, param in enumerate(tail.parameters()):
        slot = {name.split(".", 2)[2]: v for name, v in tensors.items() if name.startswith(f"adam.{k}.")}
        if slot:
            optimizer.state[param] = slot
    return json.loads(metadata["progress"])


def _write_learned(folder: Path, signature: dict, tail, record: dict) -> None:
    from safetensors.torch import save

    weights = {k: v.detach().contiguous() for k, v in tail.state_dict().items()}
    metadata = {"images": signature["images"], "seed": str(signature["seed"])}
    write_bytes_atomic(folder / LEARNED_WEIGHTS, save(weights, metadata=metadata))
    record = {**record, "images_hash": signature["images"], "seed": signature["seed"], "conf": signature["conf"],
              "weights_sha1": hashlib.sha1((folder / LEARNED_WEIGHTS).read_bytes()).hexdigest()}
    write_bytes_atomic(folder / LEARNED_RECORD, json.dumps(record, indent=1).encode())


def load_learned(matcher, index: CollectionIndex) -> None:
    """Put the index's learned tail into ``matcher``'s pair model (refused if learned on other images)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = index.path / LEARNED_DIR / LEARNED_WEIGHTS
    with safe_open(str(path), "pt") as f:
        if (f.metadata() or {}).get("images") != images_hash(index):
            raise SegswapError(f"{path} was learned on other images than {index.path} now holds")
    matcher.model.tail.load_state_dict(load_file(str(path)))
    adapted = index.path / LEARNED_DIR / ADAPTED_WEIGHTS
    if adapted.is_file():  # rule L4: the transformer adapted to the learned features
        matcher.model.load_state_dict(load_file(str(adapted)), strict=False)
    # The shipped tail runs on an ONNX graph exported from its own weights: export the learned ones (without
    # this the learned weights are loaded but never run).
    if matcher.model.tail.onnx is not None:
        matcher.model.tail.run_on_onnx(hashlib.sha256(path.read_bytes()).hexdigest())


def evaluate(root: Path, work: Path) -> dict:
    """`segswap eval details` and `segswap eval discover` (regions design) on ``root`` with the learned tail."""
    from segswap.collection.discover import discovery_json, run_discovery
    from segswap.collection.search import search
    from segswap.evaluation.details import detail_scores, read_detail_truth
    from segswap.evaluation.discovery import discovery_scores, read_discovery_truth, relative_patterns
    from segswap.pair import load

    index = CollectionIndex(work / "index")
    matcher = load(backbone=index.backbone, size=index.size)
    load_learned(matcher, index)
    images = (root / "images").resolve()
    queries, results = read_detail_truth(root), []
    for query in tqdm(queries, desc="searching details", unit="query"):
        found = search(index, images / query.image, matcher, box=query.box, top=11)
        hits = [(str(h.image.path.resolve().relative_to(images)), h.box) for h in found.hits]
        results.append([(image, box) for image, box in hits if image != query.image][:10])
    found = discovery_json(run_discovery(index, matcher, design="regions"))
    return {"details": detail_scores(queries, results),
            "discover": discovery_scores(relative_patterns(found["patterns"], root / "images"), read_discovery_truth(root))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    learning = commands.add_parser("learn")
    learning.add_argument("--index", type=Path, required=True)
    learning.add_argument("--minutes", type=float, default=20.0)
    learning.add_argument("--steps", type=int)
    learning.add_argument("--seed", type=int, default=0)
    learning.add_argument("--preserve", type=float, default=DEFAULT_CONF["preserve"], help="0: ArtMiner's loss alone (L1)")
    adapting = commands.add_parser("adapt")
    adapting.add_argument("--index", type=Path, required=True)
    adapting.add_argument("--minutes", type=float, default=10.0)
    adapting.add_argument("--seed", type=int, default=0)
    evaluating = commands.add_parser("eval")
    evaluating.add_argument("root", type=Path)
    evaluating.add_argument("--work", type=Path, required=True)
    evaluating.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "learn":
        from segswap.pair import load

        with CollectionIndex(args.index, snapshot=False) as index:
            tail = load(backbone=index.backbone, size=index.size).model.tail
            print(learn(index, tail, minutes=args.minutes, steps=args.steps, seed=args.seed,
                        preserve=args.preserve).line())
    elif args.command == "adapt":
        from segswap.pair import load

        with CollectionIndex(args.index, snapshot=False) as index:
            matcher = load(backbone=index.backbone, size=index.size)
            load_learned(matcher, index)
            matcher.model.tail.onnx = None  # training runs the PyTorch blocks
            print(adapt(index, matcher.model, minutes=args.minutes, seed=args.seed))
    else:
        scores = evaluate(args.root, args.work)
        print(json.dumps(scores, indent=1))
        if args.json:
            args.json.write_text(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
