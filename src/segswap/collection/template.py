"""Where a detail lies in another image, by ArtMiner's one-shot detection: the detail's backbone features
slid over the image's at several sizes, scored by their mean cosine (normalised cross-correlation).

`segswap search --box` uses it as the last resort for a hit's box: a detail a tenth of an image's width is
two or three cells at the index's scale, too few for the pair model's region, and across a depiction it has
too few keypoints; at a finer scale its features still find it (rule G6, lab/rules.md: copies boxed at
IoU ≥ 0.5 0.38 → 0.54 on the small-detail collection, across a depiction 0.15 → 0.50). It also judges the
keypoint inliers' and the pair region's boxes with its own measure, and takes their place where it fits
clearly better and is of comparable size (rule G8: on collections generated after the rule, small details
0.42 → 0.48, a style collection 0.82 → 0.88).

    detail = DetailTemplate(query_rgb, (x0, y0, x1, y1))
    found = detail.locate(image_rgb)               # (score, box) or None
    better = detail.overrule(image_rgb, hit_box)   # (score, box) where it should replace hit_box, else None
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
#: The template overrules a hit's box (rule G8) where its best place fits by this much more mean cosine than the
#: hit's box does, and is not more than AREA_RATIO times smaller than that box (a mean cosine over fewer cells is
#: higher by chance).
ARBITER_MARGIN = 0.10
AREA_RATIO = 4.0


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

    def _searched(self, image: np.ndarray) -> tuple[torch.Tensor, float]:
        """``image``'s features at :attr:`target_side` and the factor from its pixels to theirs."""
        resized = resize_for_model(image, self.target_side)
        return self._features(resized), resized.shape[1] / image.shape[1]

    def _scores(self, feats: torch.Tensor) -> dict[int, torch.Tensor]:
        """By template size (cells), the template's mean cosine at every place in ``feats``, for the sizes that fit."""
        scores = {}
        for cells in template_sizes(self.target_side // STRIDE):
            _, rows, cols = self._geometry(cells)
            if rows > feats.shape[1] or cols > feats.shape[2]:
                continue  # not built unless some image fits it: the largest cost the most
            scores[cells] = F.conv2d(feats[None], self._template(cells)[None])[0, 0] / (rows * cols)
        return scores

    def locate(self, image: np.ndarray) -> tuple[float, tuple[int, int, int, int]] | None:
        """(mean cosine, box in ``image``'s pixels) of the best place and size of the detail in ``image``
        (H×W×3 uint8 RGB); None if no template fits in it."""
        feats, factor = self._searched(image)
        return self._best(image, self._scores(feats), factor)

    def _best(self, image: np.ndarray, scores: dict[int, torch.Tensor], factor: float):
        best = None
        for cells, at in scores.items():
            value, flat = at.flatten().max(0)
            if best is None or value.item() > best[0]:
                row, col = divmod(flat.item(), at.shape[1])
                best = (value.item(), row, col, self._geometry(cells)[0])
        if best is None:
            return None
        score, row, col, scale = best
        x0, y0, x1, y1 = self.box
        h, w = image.shape[:2]
        left, top = col * STRIDE / factor, row * STRIDE / factor
        right, bottom = left + (x1 - x0) * scale / factor, top + (y1 - y0) * scale / factor
        return score, (int(np.clip(np.floor(left), 0, w - 1)), int(np.clip(np.floor(top), 0, h - 1)),
                       int(np.clip(np.ceil(right), 1, w)), int(np.clip(np.ceil(bottom), 1, h)))

    def _score_at(self, scores: dict[int, torch.Tensor], factor: float, box) -> float | None:
        """The mean cosine at ``box`` (``image``'s pixels) of the template as long as it along the detail's long
        axis (the nearest size that fits), read at its corner."""
        if not scores:
            return None
        x0, y0, x1, y1 = (v * factor / STRIDE for v in box)
        qx0, qy0, qx1, qy1 = self.box
        wanted = x1 - x0 if qx1 - qx0 >= qy1 - qy0 else y1 - y0
        at = scores[min(scores, key=lambda c: abs(c - wanted))]
        row = int(np.clip(round(y0), 0, at.shape[0] - 1))
        col = int(np.clip(round(x0), 0, at.shape[1] - 1))
        return float(at[row, col])

    def overrule(self, image: np.ndarray, box) -> tuple[float, tuple[int, int, int, int]] | None:
        """The template's (mean cosine, box) where it should replace ``box`` as the detail's place in ``image``
        (rule G8: it fits :data:`ARBITER_MARGIN` better there than at ``box`` and is not more than
        :data:`AREA_RATIO` times smaller); None where ``box`` stays."""
        feats, factor = self._searched(image)
        scores = self._scores(feats)  # once: the best place and the box's are read from the same maps
        best = self._best(image, scores, factor)
        current = self._score_at(scores, factor, box)
        if best is None or current is None or best[0] - current < ARBITER_MARGIN:
            return None
        if _area(best[1]) * AREA_RATIO < _area(box):
            return None
        return best


def _area(box) -> float:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])
