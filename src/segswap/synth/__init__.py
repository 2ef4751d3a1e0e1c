"""Segment-swapping training data: pairs of images that share known objects, with exact ground truth.

One entry point::

    from segswap.synth import generate
    summary = generate(["coco128_seg"], "photos", "out", n=1000, styles="styles")

See docs/synth.md for the design and docs/formats.md for the files written.
"""

from .run import FORMAT_VERSION, Summary, generate
from .swapping import STAGES

__all__ = ["FORMAT_VERSION", "STAGES", "Summary", "generate"]
