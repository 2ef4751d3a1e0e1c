"""Semantic commonness over a group, from DINOv2 tokens and the objectness prior (after Amir et al. 2022).

Different instances of a category share parts semantically, not pixel by pixel. The tokens of every
image of the group are clustered together into parts (spherical k-means, FAISS); each part is scored by
the mean saliency of its tokens, averaged over the images it appears in; every token then takes its
part's score. A part that is salient across the group (the cows' heads, legs, flanks) scores high even in
an image where the prior missed it; a part salient in one image only scores low.
"""

from __future__ import annotations

import numpy as np

#: Parts per group: Amir et al. pick up to 10 by an elbow rule; their elbow picked 10 on every MSRC
#: group we tried, so the count is fixed.
PARTS = 10
KMEANS_ITERATIONS = 30


def part_labels(token_maps: list[np.ndarray], parts: int = PARTS, seed: int = 0) -> list[np.ndarray]:
    """Cluster the tokens of all images (each rows×cols×C) together; one rows×cols int map per image."""
    import faiss

    vectors = np.concatenate([t.reshape(-1, t.shape[-1]) for t in token_maps]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-6)
    parts = max(1, min(parts, len(vectors)))
    kmeans = faiss.Kmeans(vectors.shape[1], parts, niter=KMEANS_ITERATIONS, seed=seed, spherical=True,
                          verbose=False)
    kmeans.train(vectors)
    _, labels = kmeans.index.search(vectors, 1)
    out, start = [], 0
    for t in token_maps:
        count = t.shape[0] * t.shape[1]
        out.append(labels[start:start + count, 0].reshape(t.shape[:2]))
        start += count
    return out


def part_scores(labels: list[np.ndarray], saliency_grids: list[np.ndarray]) -> np.ndarray:
    """Per part: its tokens' mean saliency in each image where it appears, averaged over those images."""
    parts = max(int(label.max()) for label in labels) + 1
    total, present = np.zeros(parts), np.zeros(parts)
    for label, saliency in zip(labels, saliency_grids):
        for part in np.unique(label):
            total[part] += float(saliency[label == part].mean())
            present[part] += 1
    return total / np.maximum(present, 1)


def semantic_commonness(token_maps: list[np.ndarray], saliency_grids: list[np.ndarray],
                        parts: int = PARTS) -> list[np.ndarray]:
    """Per image, a rows×cols map in [0, 1]: the group-level foreground score of each token's part.

    ``saliency_grids``: each image's saliency averaged onto its token grid.
    """
    labels = part_labels(token_maps, parts)
    scores = part_scores(labels, saliency_grids)
    return [scores[label].astype(np.float32) for label in labels]


def _on_grid(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(values.astype(np.float32), (grid[1], grid[0]), interpolation=cv2.INTER_AREA)


def semantic_cosegment(images: list[np.ndarray], prior, *, with_saliency: bool) -> list[np.ndarray]:
    """Boolean masks of one group from its semantic commonness, or from the mean of that and each image's
    saliency map, each image's map cut at its own Otsu level. ``prior``: a
    :class:`~segswap.backbone.objectness.FocusPrior`."""
    import cv2

    from ..backbone.objectness import otsu_foreground

    outputs = [prior(image) for image in images]
    grids = [o["tokens"].shape[:2] for o in outputs]
    common = semantic_commonness([o["tokens"] for o in outputs],
                                 [_on_grid(o["saliency"], g) for o, g in zip(outputs, grids)])
    maps = [cv2.resize(c, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
            for c, image in zip(common, images)]
    if with_saliency:
        maps = [(o["saliency"] + m) / 2 for o, m in zip(outputs, maps)]
    return [otsu_foreground(m) for m in maps]
