"""Pair models (SegSwap, its NC-Net variant, MaCoSNet, the training-free correlation). Every model takes ``{"feats_a", "feats_b"}`` and returns masks and flows; see
:class:`segswap.models.transformer.SegSwapTransformer` for the keys and shapes."""

from .correlation import CorrelationMatcher
from .macosnet import MaCoSNet
from .ncnet import NCNetMatcher
from .scott import ScottMatcher
from .transformer import SegSwapTransformer

#: Model classes by the name used in weights files, ``segswap.load(name=...)`` and ``--model``.
MODEL_CLASSES = {
    "segswap": SegSwapTransformer,
    "correlation": CorrelationMatcher,
    "ncnet": NCNetMatcher,
    "macosnet": MaCoSNet,
}

#: Every trainable or loadable model, pair models and the SCOTT same-object classifier (which has no
#: flows, so it is not a pair model): weights files and training recipes name one of these.
ALL_MODEL_CLASSES = {**MODEL_CLASSES, "scott": ScottMatcher}

#: Models that need trained weights before their output means anything.
TRAINABLE = {"segswap", "ncnet", "macosnet"}

#: Pair models whose correspondences are one smooth warp of the whole image (their outputs hold
#: ``affine_*`` and ``tps_*``): `segswap align --model NAME` shows it.
WARP_MODELS = {"macosnet"}

#: Model options that change only how outputs are read at inference: trained weights accept them, and
#: training recipes leave them out (training does not read them).
INFERENCE_OPTIONS = frozenset({"eval_flow_radius"})


def register_model(name: str, model_class: type, trainable: bool = False) -> None:
    """Make ``model_class`` a pair model named ``name``: ``segswap.load(name)``, ``--model NAME`` in the Python
    API's collection functions, and, with ``trainable``, training recipes (``"model": name``) and weights
    files. The class follows :class:`~segswap.models.transformer.SegSwapTransformer`'s contract: a
    ``default_conf`` dict merged with keyword options, and ``forward({"feats_a", "feats_b"})`` returning
    ``mask_a``, ``mask_b`` (B×H×W in [0, 1]) and ``flow_ab``, ``flow_ba`` (B×H×W×2, the partner cell's centre
    in [0, 1] coordinates of the other image)."""
    if name in ALL_MODEL_CLASSES:
        raise ValueError(f"a model named {name!r} exists")
    MODEL_CLASSES[name] = ALL_MODEL_CLASSES[name] = model_class
    if trainable:
        TRAINABLE.add(name)


__all__ = ["ALL_MODEL_CLASSES", "INFERENCE_OPTIONS", "MODEL_CLASSES", "TRAINABLE", "WARP_MODELS", "CorrelationMatcher", "MaCoSNet", "NCNetMatcher",
           "ScottMatcher", "SegSwapTransformer", "register_model"]
