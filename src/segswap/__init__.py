"""segswap: find what images have in common, as co-segmentation masks and dense correspondences.

The one entry point is :func:`load`, which returns a :class:`segswap.pair.Matcher`::

    import segswap
    matcher = segswap.load()
    result = matcher.match("a.jpg", "b.jpg")
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("segswap")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"


def load(name=None, weights=None, **overrides):
    """Return a ready :class:`~segswap.pair.Matcher`; see :func:`segswap.pair.load` for arguments."""
    from .pair import load as _load

    return _load(name=name, weights=weights, **overrides)


__all__ = ["__version__", "load"]
