"""Which frozen backbone should MaCoSNet's correlation and decoder start from? A measurement before any
training, on the pairs of the `--val-coseg` protocol (each MSRC group's first 7 images, 6 consecutive
pairs, 320 px):

- J of the training-free correlation matcher (its cycle-consistent masks, as `--val-coseg` scores them);
- the AUC, over cells, of a cell's best cosine similarity to the other image (each image's mean feature
  removed first, as for category co-segmentation in reference.md) as a predictor of the object:
  what the co-segmentation decoder sees before it learns anything;
- the backbone's time per image.

    .venv/bin/python lab/macosnet_backbone.py ../shared/data/eval/msrc_coseg [--backbones efficientnet-lite2 dinov2-s]

Used in lab/training.md ("MaCoSNet").
"""

from __future__ import annotations

import argparse
import time

import cv2
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from segswap.backbone import get_backbone
from segswap.evaluation.coseg import CosegPairValidation
from segswap.evaluation.metrics import IGNORE, OBJECT
from segswap.models import CorrelationMatcher
from segswap.models.correlation import cell_similarity


def centred(feats: torch.Tensor) -> torch.Tensor:
    return F.normalize(feats - feats.mean(dim=(2, 3), keepdim=True), dim=1)


def best_similarity_auc(validation: CosegPairValidation) -> float:
    scores, labels = [], []
    for pairs in validation.pairs.values():
        for i, j in pairs:
            sim = cell_similarity(centred(validation.features[i]), centred(validation.features[j]))[0]
            for k, best in ((i, sim.amax(dim=1)), (j, sim.amax(dim=0))):
                h, w = validation.features[k].shape[2:]
                truth = cv2.resize(validation.truth[k], (w, h), interpolation=cv2.INTER_NEAREST).flatten()
                keep = truth != IGNORE
                scores += best.numpy()[keep].tolist()
                labels += (truth[keep] == OBJECT).tolist()
    return float(roc_auc_score(labels, scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--backbones", nargs="+", default=["efficientnet-lite2", "dinov2-s"])
    parser.add_argument("--size", type=int, default=320)
    args = parser.parse_args()
    image = torch.rand(1, 3, args.size, args.size)
    for name in args.backbones:
        backbone = get_backbone(name)
        backbone(image)
        start = time.perf_counter()
        for _ in range(5):
            backbone(image)
        ms = 1000 * (time.perf_counter() - start) / 5
        validation = CosegPairValidation(args.root, name, args.size)
        j = validation(CorrelationMatcher())["mean"]
        print(f"{name}: correlation matcher J {j:.3f}, best-similarity AUC {best_similarity_auc(validation):.3f}, "
              f"{ms:.0f} ms per {args.size}-px image")


if __name__ == "__main__":
    main()
