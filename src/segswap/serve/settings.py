"""What `segswap serve` is asked to show, and the checks on it before anything starts. Light: the
command line imports it before torch and OpenCV load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SegswapError


@dataclass
class ViewerSettings:
    index: Path
    model: str | None = None
    weights: Path | None = None
    cosegment: Path | None = None  # an output folder of `segswap cosegment`
    discovery: Path | None = None  # a saved `segswap discover --json`; default: the viewer's own last run
    shipped: bool = False  # the shipped pair model even where the index holds weights learned on it (`segswap learn`)


def check_settings(settings: ViewerSettings) -> None:
    """Refuse, before anything starts, what would fail later: a missing index, weights or co-seg folder."""
    from ..io.paths import check_input_file, check_input_folder

    check_input_folder(settings.index)
    if settings.weights is not None:
        check_input_file(settings.weights, "weights file")
    if settings.cosegment is not None:
        check_input_folder(settings.cosegment)
    if settings.discovery is not None:
        check_input_file(settings.discovery, "discovery JSON")
    if settings.model is not None:
        from ..models import MODEL_CLASSES

        if settings.model not in MODEL_CLASSES:
            raise SegswapError(f"--model must be one of {', '.join(MODEL_CLASSES)}, not {settings.model!r}")
    if settings.model is None and settings.weights is None and not settings.shipped:  # the index is opened only then
        from ..collection.index import CollectionIndex
        from ..collection.learned import learned_for

        with CollectionIndex(settings.index) as index:  # weights learned on other images: one line now, not a failed job
            learned_for(index, settings.model, settings.weights, settings.shipped)
