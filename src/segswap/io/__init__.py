"""Reading images and datasets robustly."""

from .images import MAX_PIXELS, MIN_SIDE, load_image, resize_for_model

__all__ = ["MAX_PIXELS", "MIN_SIDE", "load_image", "resize_for_model"]
