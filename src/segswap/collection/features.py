"""Backbone features of many images: decoding in a background thread while the backbone runs."""

from __future__ import annotations

import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ImageError
from ..io import load_image, pixels_to_tensor, resize_for_model

#: Files decoded ahead of the backbone.
PREFETCH = 8


def model_input(path: Path, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Decode ``path`` → (1×3×H×W tensor in [0, 1], long side ≈ ``size``, sides multiples of 16; the
    image's own (w, h)). Raises :class:`ImageError` for unreadable files."""
    try:
        rgb = load_image(path)
    except OSError as err:  # e.g. the file vanished or became unreadable after it was listed
        raise ImageError(f"{path}: {err.strerror or err}") from None
    return pixels_to_tensor(resize_for_model(rgb, size)), (rgb.shape[1], rgb.shape[0])


def prefetched(load: Callable, items: Iterable, ahead: int = PREFETCH) -> Iterator[tuple[object, object]]:
    """Yield ``(item, load(item))`` in order — or ``(item, ImageError)`` when loading fails — with up
    to ``ahead`` items loading in a background thread (image decoding releases the GIL)."""

    def attempt(item):
        try:
            return load(item)
        except ImageError as err:
            return err

    with ThreadPoolExecutor(max_workers=1) as pool:
        queue: deque = deque()
        todo = iter(items)
        for item in todo:
            queue.append((item, pool.submit(attempt, item)))
            if len(queue) >= ahead:
                break
        while queue:
            item, future = queue.popleft()
            following = next(todo, None)
            if following is not None:
                queue.append((following, pool.submit(attempt, following)))
            yield item, future.result()


@dataclass
class FolderFeatures:
    """Features of the readable images among some paths, in their order; the rest listed as skipped."""

    paths: list[Path] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # each image's own (w, h)
    features: list[np.ndarray] = field(default_factory=list)  # C×h×w float16
    skipped: list[str] = field(default_factory=list)  # one message per unreadable file
    # Set when a cluster's workers computed the features (segswap.cluster): where each block lies in
    # the shared folder, (file, byte offset, shape), and each image's regional descriptors.
    locations: list[tuple[str, int, tuple[int, int, int]]] | None = None
    descriptors: list[np.ndarray] | None = None

    @property
    def grids(self) -> list[tuple[int, int]]:
        return [f.shape[1:] for f in self.features]


def extract_features(paths: Iterable[Path], matcher, *, skip_unreadable: bool, show_progress: bool = True) -> FolderFeatures:
    """Run ``matcher``'s backbone on every image at ``matcher.size``. Unreadable files raise
    :class:`ImageError`, or with ``skip_unreadable`` are listed in ``skipped`` with a warning."""
    paths = list(paths)
    out = FolderFeatures()
    progress = tqdm(total=len(paths), unit="img", desc="features", disable=not show_progress)
    for path, loaded in prefetched(lambda p: model_input(p, matcher.size), paths):
        progress.update(1)
        if isinstance(loaded, ImageError):
            if not skip_unreadable:
                raise loaded
            progress.write(f"warning: skipped {loaded}", file=sys.stderr)
            out.skipped.append(str(loaded))
            continue
        tensor, size = loaded
        out.paths.append(Path(path))
        out.sizes.append(size)
        out.features.append(matcher.features(tensor)[0].numpy().astype(np.float16))
    progress.close()
    return out
