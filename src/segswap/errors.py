"""Exceptions that carry a message meant for the user.

The CLI prints ``SegswapError`` messages as one line and exits with status 2; anything else is a bug
and keeps its traceback.
"""


class SegswapError(Exception):
    """A problem with the user's input or set-up, explained in one line."""


class ImageError(SegswapError):
    """An image that cannot be read or used."""


class UntrainedModelError(SegswapError):
    """A model was asked for whose trained weights are not available."""


class BackboneMismatchError(SegswapError):
    """Weights asked to run on features of another backbone than the one they were trained on."""

    def __init__(self, message: str, *, trained: str, requested: str):
        super().__init__(message)
        self.trained, self.requested = trained, requested


class BackboneUnavailableError(SegswapError):
    """A backbone whose package is not installed."""


class IndexDamagedError(SegswapError):
    """Part of an index is damaged (a feature block, a shard, its database): the message names the part and
    the command that repairs it."""
