"""Pair models. Every model takes ``{"feats_a", "feats_b"}`` and returns masks and flows; see
:class:`segswap.models.transformer.SegSwapTransformer` for the keys and shapes."""

from .correlation import CorrelationMatcher
from .ncnet import NCNetMatcher
from .transformer import SegSwapTransformer

#: Model classes by the name used in weights files, ``segswap.load(name=...)`` and ``--model``.
MODEL_CLASSES = {
    "segswap": SegSwapTransformer,
    "correlation": CorrelationMatcher,
    "ncnet": NCNetMatcher,
}

#: Models that need trained weights before their output means anything.
TRAINABLE = {"segswap", "ncnet"}

__all__ = ["MODEL_CLASSES", "TRAINABLE", "CorrelationMatcher", "NCNetMatcher", "SegSwapTransformer"]
