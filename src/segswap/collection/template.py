"""Where a detail lies in another image, by ArtMiner's one-shot detection: the detail's backbone features
slid over the image's at several sizes, scored by their mean cosine (normalised cross-correlation).

`segswap search --box` uses it as the last resort for a hit's box: a detail a tenth of an image's width is
two or three cells at the index's scale, too few for the pair model's region, and across a depiction it has
too few keypoints; at a finer scale its features still find it (rule G6, lab/rules.md: copies boxed at
IoU ≥ 0.5 0.38 → 0.54 on the small-detail collection, across a depiction 0.15 → 0.50).

    found = DetailTemplate(query_rgb, (x0, y0, x1, y1)).locate(image_rgb)   # (score, box) or None
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..backbone import get_backbone
from ..grid import STRIDE
from ..io import pixels_to_tensor, resize_for_model

#: The features slid: Lite2's block 14, pretrained (the shipped tail placed as many copies; lab/rules.md G4).
TEMPLATE_BACKBONE = "efficientnet-lite2"
#: The long side the searched image is brought to: a detail a tenth of its width then spans about 5 cells.
TARGET_SIDE = 768
#: The smallest template (its long side in cells) and the ratio between successive sizes, up to the whole
#: searched image: the detail's size there is unknown.
SMALLEST_CELLS = 3
SIZE_STEP = 1.25
#: Cells of the query image kept around the detail when its features are computed, so that they are the
#: features of the detail in its picture, not of a cut-out with borders.
CONTEXT_CELLS = 3


def template_sizes(longest: int) -> list[int]:
    """Template long sides in cells: :data:`SMALLEST_CELLS`, then × :data:`SIZE_STEP` (rounded, distinct) up
    to ``longest``."""
    sizes, size = [], float(SMALLEST_CELLS)
    while round(size) <= longest:
        if round(size) not in sizes:
            sizes.append(round(size))
        size *= SIZE_STEP
    return sizes


class DetailTemplate:
    """The detail ``box`` (x0, y0, x1, y1 in pixels) of ``image`` (H×W×3 uint8 RGB), ready to be found in
    other images. Each template is computed the first time it fits in an image :meth:`locate` searches."""

    def __init__(self, image: np.ndarray, box, *, target_side: int = TARGET_SIDE):
        self.image, self.box, self.target_side = image, tuple(int(v) for v in box), target_side
        self._backbone = None
        self._templates: dict[int, torch.Tensor] = {}  # by long side in cells, built when one first fits

    def _features(self, pixels: np.ndarray) -> torch.Tensor:
        if self._backbone is None:
            self._backbone = get_backbone(TEMPLATE_BACKBONE)
        return self._backbone(pixels_to_tensor(pixels))[0]

    def _geometry(self, cells: int) -> tuple[float, int, int]:
        """(scale, rows, cols) of the template whose long side spans ``cells`` cells."""
        x0, y0, x1, y1 = self.box
        scale = cells * STRIDE / max(x1 - x0, y1 - y0)
        cols, rows = (max(1, round(side * scale / STRIDE)) for side in (x1 - x0, y1 - y0))
        return scale, rows, cols

    def _template(self, cells: int) -> torch.Tensor:
        """C×rows×cols features of the box warped so its long side spans ``cells`` cells."""
        if cells in self._templates:
            return self._templates[cells]
        x0, y0, x1, y1 = self.box
        scale, rows, cols = self._geometry(cells)
        size = ((cols + 2 * CONTEXT_CELLS) * STRIDE, (rows + 2 * CONTEXT_CELLS) * STRIDE)
        shift = CONTEXT_CELLS * STRIDE
        warp = np.float32([[scale, 0, shift - x0 * scale], [0, scale, shift - y0 * scale]])
        pixels = cv2.warpAffine(self.image, warp, size, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
        feats = self._features(pixels)
        self._templates[cells] = feats[:, CONTEXT_CELLS:CONTEXT_CELLS + rows, CONTEXT_CELLS:CONTEXT_CELLS + cols]
        return self._templates[cells]

    def locate(self, image: np.ndarray) -> tuple[float, tuple[int, int, int, int]] | None:
        """(mean cosine, box in ``image``'s pixels) of the best place and size of the detail in ``image``
        (H×W×3 uint8 RGB); None if no template fits in it."""
        resized = resize_for_model(image, self.target_side)
        feats = self._features(resized)
        factor = resized.shape[1] / image.shape[1]  # searched image's pixels → resized pixels
        best = None
        for cells in template_sizes(self.target_side // STRIDE):
            scale, rows, cols = self._geometry(cells)
            if rows > feats.shape[1] or cols > feats.shape[2]:
                continue  # not built unless some image fits it: the largest cost the most
            tmpl = self._template(cells)
            scores = F.conv2d(feats[None], tmpl[None])[0, 0] / (rows * cols)
            value, flat = scores.flatten().max(0)
            if best is None or value.item() > best[0]:
                row, col = divmod(flat.item(), scores.shape[1])
                best = (value.item(), row, col, scale)
        if best is None:
            return None
        score, row, col, scale = best
        x0, y0, x1, y1 = self.box
        h, w = image.shape[:2]
        left, top = col * STRIDE / factor, row * STRIDE / factor
        right, bottom = left + (x1 - x0) * scale / factor, top + (y1 - y0) * scale / factor
        return score, (int(np.clip(np.floor(left), 0, w - 1)), int(np.clip(np.floor(top), 0, h - 1)),
                       int(np.clip(np.ceil(right), 1, w)), int(np.clip(np.ceil(bottom), 1, h)))
