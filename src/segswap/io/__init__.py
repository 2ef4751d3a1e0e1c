"""Reading images and datasets robustly."""

from .images import MAX_PIXELS, MIN_SIDE, load_image, pixels_to_tensor, resize_for_model

__all__ = ["MAX_PIXELS", "MIN_SIDE", "load_image", "pixels_to_tensor", "resize_for_model"]
