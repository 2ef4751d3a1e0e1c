"""ArtMiner's feature learning on an index, its stage 1 alone (rules L1–L3, lab/rules.md), and the evaluation of
an index's learned weights. `segswap learn` (both stages, rule L4) is in the library:
`segswap.train.collection_learning`; this is what measured its parts.

    .venv/bin/python lab/style_collection.py --details --out W/style_detail_dev
    segswap eval details W/style_detail_dev --work W/sd_work                       # before (indexes the collection)
    .venv/bin/python lab/collection_learning.py features --index W/sd_work/index --minutes 10 --seed 0 [--preserve 0]
    .venv/bin/python lab/collection_learning.py eval W/style_detail_dev --work W/sd_work   # the learned tail alone

L1 (`--preserve 0`, ArtMiner's loss alone) and L2 (μ = 1) ran on W/style_dev, L3 (μ = 1) on W/style_detail_dev;
their `learned/tail.safetensors` is read by `eval` into the shipped pair model (the transformer unchanged).
L4 is `segswap learn --index W/sd_work/index` then `segswap eval details|discover W/style_detail_dev --work
W/sd_work` (L4's own run, before the command existed, spent 10 minutes on each stage, as the command's default
20 minutes does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from safetensors.torch import load_file, save
from tqdm import tqdm

from segswap.collection.index import CollectionIndex
from segswap.collection.learned import LEARNED_DIR, images_hash
from segswap.io.files import write_bytes_atomic
from segswap.pair import LEARNED_TAIL, load
from segswap.train.collection_learning import DEFAULT_CONF, learn_features


def features(index: CollectionIndex, minutes: float, steps: int | None, seed: int, preserve: float) -> dict:
    """Stage 1 alone into ``IDX/learned/tail.safetensors`` (not a complete `segswap learn` result: the commands
    do not use it; ``eval`` below does)."""
    matcher = load(backbone=index.backbone, size=index.size)
    tail = matcher.model.tail
    tail.onnx = None
    conf = {**DEFAULT_CONF, "preserve": preserve}
    folder = index.path / LEARNED_DIR
    folder.mkdir(exist_ok=True)
    signature = {"images": images_hash(index), "seed": seed, "conf": conf, "stage": "features alone"}
    progress = learn_features(index, tail, folder, signature, minutes * 60, steps, seed, True, conf)
    write_bytes_atomic(folder / LEARNED_TAIL, save({k: v.contiguous() for k, v in tail.state_dict().items()},
                                                  metadata={"images": signature["images"]}))
    return progress


def evaluate(root: Path, work: Path) -> dict:
    """`segswap eval details` and `segswap eval discover` (regions design) on ``root`` with the index's learned tail
    (and its adapted transformer, if there is one) in the shipped pair model."""
    from segswap.collection.discover import discovery_json, run_discovery
    from segswap.collection.search import search
    from segswap.evaluation.details import detail_scores, read_detail_truth
    from segswap.evaluation.discovery import discovery_scores, read_discovery_truth, relative_patterns

    index = CollectionIndex(work / "index")
    matcher = load(backbone=index.backbone, size=index.size)
    folder = index.path / LEARNED_DIR
    matcher.model.tail.load_state_dict(load_file(str(folder / LEARNED_TAIL)))
    if (folder / "transformer.safetensors").is_file():
        matcher.model.load_state_dict(load_file(str(folder / "transformer.safetensors")), strict=False)
    # the shipped tail runs on an ONNX graph exported from its weights: export the learned ones
    matcher.model.tail.run_on_onnx(hashlib.sha256((folder / LEARNED_TAIL).read_bytes()).hexdigest())
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
    learning = commands.add_parser("features")
    learning.add_argument("--index", type=Path, required=True)
    learning.add_argument("--minutes", type=float, default=10.0)
    learning.add_argument("--steps", type=int)
    learning.add_argument("--seed", type=int, default=0)
    learning.add_argument("--preserve", type=float, default=DEFAULT_CONF["preserve"], help="0: ArtMiner's loss alone (L1)")
    evaluating = commands.add_parser("eval")
    evaluating.add_argument("root", type=Path)
    evaluating.add_argument("--work", type=Path, required=True)
    evaluating.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "features":
        with CollectionIndex(args.index, snapshot=False) as index:
            print(features(index, args.minutes, args.steps, args.seed, args.preserve))
    else:
        scores = evaluate(args.root, args.work)
        print(json.dumps(scores, indent=1))
        if args.json:
            args.json.write_text(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
