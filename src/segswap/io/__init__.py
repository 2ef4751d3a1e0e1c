"""Reading images and datasets robustly.

:mod:`segswap.io.paths` (which files are images, checks on arguments) is imported eagerly and is
light; the image readers, which need OpenCV and torch, load on first use so that the command line can
check its arguments first.
"""

from .paths import IMAGE_SUFFIXES, list_images

_IMAGE_NAMES = frozenset({"MAX_PIXELS", "MIN_SIDE", "load_image", "pixels_to_tensor", "resize_for_model"})


def __getattr__(name):
    if name in _IMAGE_NAMES:
        from . import images

        return getattr(images, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "MIN_SIDE", "list_images", "load_image", "pixels_to_tensor", "resize_for_model"]
