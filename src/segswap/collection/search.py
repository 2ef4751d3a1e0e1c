"""Retrieval: "where else does this detail appear?" (paper Sec. 4).

A query — an image, or a box in one (a detail) — is shortlisted against the index by descriptor (its
pooled features against every image's windows), then the shortlist is re-ranked by the pair model's
Eq. 3 score, S(query → candidate). Candidates' features come from the index, so per candidate only the
pair model runs. Each hit carries the matched region: the candidate's cycle-consistent mask (its own
mask × the query's mask where its cells land; for a detail query, only on the cells the detail's own
cells match both ways, not the rest of an object that resembles it) and the bounding box of its strongest connected blob of
cells above ``REGION_THRESHOLD`` (stray cells elsewhere would otherwise stretch the box).

Where the index stores keypoints (:mod:`segswap.keypoints`, `segswap index`), the head of that ranking
(``2 × top``, at most :data:`HEAD`) is checked by them: the query's keypoints (those inside the box, for a
detail) are matched to each candidate's stored ones by mutual nearest neighbours and a homography is fitted.
A candidate's **fused score** is max(matched fraction / its threshold, inliers / theirs), both thresholds
calibrated (`segswap eval calibrate-search`): the head is ranked by it, "match" is a fused score of at least
1, and where the keypoints decide, the box is theirs (the query box carried by the homography, or the
inliers' extent for a whole image).

A detail is often too small for either evidence to decide (two or three cells at the index's scale), yet its
copies are ranked near the top; every such hit still gets a best-guess box, and ``box_from`` says whose:
the box carried by the keypoint inliers when there are at least :data:`GUESS_MIN_INLIERS` of them, else the
pair model's matched region, else where the detail's features, slid over the hit at several sizes, fit
best (ArtMiner's one-shot detection, :mod:`.template`). That template also overrules the keypoint inliers' or
the region's box where it fits there clearly worse than at the template's own best place, of comparable size.
A guessed box changes no verdict.

With ``rerank="ransac"`` the shortlist is re-ranked instead by ArtMiner's training-free verification
(:func:`segswap.verify.ransac.verify`): the region is its inlier cells and the box their extent.

Each hit also gets a verdict, match or no match. For the pair model it compares the hit's matched
fraction (:func:`segswap.pair.matched_fraction`: the score over the query's cells) with the threshold
calibrated for the loaded weights on held-out synthetic pairs (`segswap eval calibrate-search`, shipped
in ``data/search_calibration.json``), or with a threshold the caller gives. ArtMiner's score has no
calibration: its hits get a verdict only from a given threshold, on that score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..errors import ImageError, SegswapError
from ..grid import STRIDE, cells_to_pixels
from ..progress import ProgressCallback, report_step, stage
from ..io import load_image, pixels_to_tensor, resize_for_model
from ..models.outputs import cycle_consistent_mask, matched_fraction
from ..keypoints import get_matcher, is_installed
from ..shipped import KEYPOINT_MIN_INLIERS, search_calibrations
from ..verify.ransac import TOLERANCE_CELLS_IMAGE, TOLERANCE_CELLS_REGION, verify
from .descriptor import pooled
from .index import CollectionIndex, IndexedImage
from .methods import check_reranker
from .predictions import predict_pairs
from .template import DetailTemplate

#: A box query is cut out at the index's scale but never smaller than this on its short side (the
#: authors' detail queries are 64-px crops): below 4 cells the pair model has too little to attend to.
MIN_QUERY_SIDE = 64
#: The matched region of a hit: its cycle-consistent mask above this.
REGION_THRESHOLD = 0.5
#: Pairs per batch of the pair model.
BATCH = 16
#: The pair model's key for the query among the candidates' image ids (which are positive).
QUERY = -1
#: The most candidates of the pair model's ranking that keypoints check (each costs a match and a fit).
HEAD = 20
#: The most keypoints a detail query keeps from its box (:func:`box_keypoints`).
DETAIL_KEYPOINTS = 4096
#: A detail hit the keypoints do not decide still takes the box their inliers carry from this many (a
#: similarity needs 3; fewer inliers place it no better than the pair model's flow).
GUESS_MIN_INLIERS = 6
#: A box carried by the homography is kept when it stays convex and covers between these fractions of
#: the inliers' own extent's area (otherwise the inliers' extent is the box).
CARRIED_BOX_AREA = (0.25, 16.0)


#: What may place a hit's box: keypoints that decide the match, keypoint inliers below that, the pair
#: model's matched region, the detail's template slid over the hit (a guess), the pair model's flow of a
#: detail's cells (a guess, where the hit's image no longer loads), ArtMiner's inlier cells.
BOX_SOURCES = ("keypoints", "keypoint inliers", "pair region", "template", "pair flow", "verification")


@dataclass
class SearchHit:
    image: IndexedImage
    score: float  # Eq. 3, S(query → image), or ArtMiner's verification score
    mask: np.ndarray  # the matched region on the image's token grid: cycle-consistent mask, or inlier cells
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 of the region in the image's pixels
    matched: float | None = None  # the pair model's matched fraction of the query (score / query cells)
    match: bool | None = None  # the verdict; None without a threshold
    inliers: int | None = None  # homography inliers of the index's keypoints; None where not checked
    fused: float | None = None  # max(matched / its threshold, inliers / theirs); None where not both calibrated
    decided_by: tuple[str, ...] = ()  # the evidence at or above its threshold: "pair score", "keypoints"
    box_from: str | None = None  # what placed the box: one of BOX_SOURCES; None without a box

    def as_json(self) -> dict:
        return {"path": str(self.image.path), "score": round(self.score, 4),
                "matched_fraction": None if self.matched is None else round(self.matched, 5),
                "inliers": self.inliers, "fused_score": None if self.fused is None else round(self.fused, 4),
                "match": self.match, "decided_by": list(self.decided_by), "box": list(self.box) if self.box else None,
                "box_from": self.box_from, "canvas": None if self.image.canvas is None else self.image.canvas.as_json(self.box, self.image.size)}


@dataclass
class SearchResult:
    query: Path
    query_box: tuple[int, int, int, int] | None
    shortlisted: int
    hits: list[SearchHit]
    rerank: str = "model"  # what re-ranked the shortlist: one of RERANKERS
    threshold: float | None = None  # what the verdicts compare with (matched fraction, or ArtMiner's score)
    threshold_source: str | None = None  # "calibrated" or "given"; None: no verdicts
    inlier_threshold: float | None = None  # the keypoints' calibrated inliers; None: keypoints not used


def calibrated_threshold(matcher, records: list[dict] | None = None) -> float | None:
    """The match threshold on the matched fraction for ``matcher``'s weights file and inference
    options in ``records`` (by default the package's calibrations), or None if they were not
    calibrated (retrained weights, another model)."""
    if matcher.weights_sha256 is None:
        return None
    for record in search_calibrations() if records is None else records:
        if "inference" not in record:  # a keypoints record
            continue
        inference = {key: matcher.model.conf.get(key) for key in record["inference"]}
        if record["weights_sha256"] == matcher.weights_sha256 and inference == record["inference"]:
            return float(record["threshold"])
    return None


def calibrated_inlier_threshold(settings: dict | None, records: list[dict] | None = None) -> float | None:
    """The inliers at which the index's keypoints (``settings``: the index's keypoint extractor) alone reach
    the calibrated precision (`segswap eval calibrate-search`), never below
    :data:`~segswap.shipped.KEYPOINT_MIN_INLIERS`; None if not calibrated. The floor because the calibration
    pairs are 320 px: full-size photographs give mutual neighbours more chance agreement (unrelated real
    images reach 7-8 homography inliers where the synthetic negatives stay under 7; lab/results.md)."""
    if settings is None:
        return None
    for record in search_calibrations() if records is None else records:
        if record.get("keypoints") == settings["matcher"] and record.get("keypoint_conf") == settings["conf"]:
            return max(float(record["threshold"]), float(KEYPOINT_MIN_INLIERS))
    return None


def search(index: CollectionIndex, query, matcher, *, box: tuple[int, int, int, int] | None = None, top: int = 10,
           shortlist: int = 100, rerank: str = "model", threshold: float | None = None,
           keypoints: bool | None = None, show_progress: bool = False,
           on_progress: ProgressCallback | None = None) -> SearchResult:
    """Find the ``top`` images of ``index`` that best share content with ``query`` (a path), or with the
    ``box`` (x0, y0, x1, y1 in its pixels) of it; best first. ``rerank``: one of :data:`RERANKERS`.
    ``threshold``: what a hit needs for "match" (see the module docstring); by default the calibrated
    one of the pair model's weights, if any. ``keypoints``: check the head by the index's keypoints (None:
    where the index has them and the wheels are installed; True: required). ``on_progress`` hears each step
    (it may cancel; see :data:`segswap.progress.ProgressCallback`)."""
    if top < 1 or shortlist < 1:
        raise SegswapError("--top and --shortlist must be at least 1")
    check_reranker(rerank)
    if matcher.backbone.name != index.backbone:
        raise SegswapError(f"{index.path} holds {index.backbone} features; the model runs on {matcher.backbone.name} "
                           f"(index the folder again with --backbone {matcher.backbone.name})")
    if threshold is not None and not np.isfinite(threshold):
        raise SegswapError(f"--threshold must be a number, not {threshold}")
    source = "given" if threshold is not None else None
    if threshold is None and rerank == "model":
        threshold = calibrated_threshold(matcher)
        source = "calibrated" if threshold is not None else None
    keypointer = _index_keypointer(index, keypoints) if rerank == "model" else None
    report_step(on_progress, "shortlisting by descriptor")
    rgb = load_image(query)
    box = _checked_box(box, rgb.shape[1], rgb.shape[0]) if box is not None else None
    with stage(f"shortlisting {len(index)} images by descriptor", show_progress):
        pixels = query_pixels(rgb, box, index.size)
        query_feats = matcher.features(pixels_to_tensor(pixels))[0].numpy()
        candidates = index.descriptor_index().search([pooled(query_feats)[None]], max(shortlist, top))[0]
    if not candidates:
        return SearchResult(Path(query), box, 0, [], rerank, threshold, source)
    if rerank == "ransac":
        hits = _verified_hits(index, query_feats, candidates, top, box, show_progress, on_progress)
        for hit in hits:
            hit.match = None if threshold is None else bool(hit.score >= threshold)
        return SearchResult(Path(query), box, len(candidates), hits, rerank, threshold, source)
    features = lambda i: query_feats if i == QUERY else index.features(i)
    predictions = predict_pairs(matcher, features, [(QUERY, image_id) for image_id, _ in candidates],
                                batch_size=BATCH, show_progress=show_progress, desc="re-ranking", on_progress=on_progress)
    ranked = sorted(predictions, key=lambda p: -p.score_ab)
    head = min(len(ranked), HEAD, 2 * top) if keypointer is not None else min(len(ranked), top)
    hits = []
    for pred in ranked[:max(head, top)]:
        image = index.image(pred.b)
        region = cycle_consistent_mask(torch.from_numpy(pred.mask_b)[None], torch.from_numpy(pred.mask_a)[None],
                                       torch.from_numpy(pred.flow_ba)[None])[0].numpy()
        if box is not None:  # a detail: its matched region, not all that resembles it (the rest of the object)
            region = region * landed_cells(pred.flow_ab, pred.flow_ba, pred.mask_a, region.shape)
        matched = float(matched_fraction(pred.score_ab, query_feats.shape[1:]))
        verdict = None if threshold is None else bool(matched >= threshold)
        decided = ("pair score",) if verdict else ()
        hit_box, box_from = region_box(region, image.size), "pair region"
        if hit_box is None and box is not None:
            hit_box, box_from = flow_box(pred.flow_ab, pred.mask_a, box, rgb.shape[1::-1], image.size), "pair flow"
        hits.append(SearchHit(image, pred.score_ab, region, hit_box, matched, verdict, decided_by=decided,
                              box_from=box_from if hit_box is not None else None))
    inlier_threshold = None
    if keypointer is not None:
        keypointer, inlier_threshold = keypointer
        _check_by_keypoints(index, keypointer, rgb, box, hits[:head], threshold, inlier_threshold, on_progress)
        order = sorted(range(head), key=lambda k: (-(hits[k].fused if hits[k].fused is not None else -1), k))
        hits = [hits[k] for k in order] + hits[head:]
    hits = hits[:top]
    if box is not None:
        _place_boxes_by_template(rgb, box, hits, show_progress, on_progress)
    return SearchResult(Path(query), box, len(candidates), hits, rerank, threshold, source, inlier_threshold)


def _place_boxes_by_template(rgb: np.ndarray, box, hits: list[SearchHit], show_progress: bool,
                             on_progress: ProgressCallback | None) -> None:
    """The detail's template (:mod:`.template`) boxes a detail hit whose box would be the pair model's flow guess
    (rule G6), and overrules a box from the keypoint inliers or the pair region where it fits clearly better
    (rule G8; lab/rules.md); where the hit's image no longer loads, its box stays."""
    needed = [hit for hit in hits if hit.box_from in (None, "pair flow", "keypoint inliers", "pair region")]
    if not needed:
        return
    detail = DetailTemplate(rgb, box)
    with stage(f"checking {len(needed)} detail boxes by template", show_progress):
        for done, hit in enumerate(needed):
            report_step(on_progress, "placing the detail", done, len(needed))
            try:
                pixels = load_image(hit.image.path)
            except ImageError:
                continue
            found = (detail.locate(pixels) if hit.box_from in (None, "pair flow") or hit.box is None
                     else detail.overrule(pixels, hit.box))
            if found is not None:
                hit.box, hit.box_from = found[1], "template"


def _index_keypointer(index: CollectionIndex, keypoints: bool | None):
    """(the index's keypoint matcher, its calibrated inlier threshold) for a search, or None (see :func:`search`)."""
    settings = index.keypoint_settings
    if keypoints is False:
        return None
    if settings is None or not is_installed(settings["matcher"]):
        if keypoints:
            raise SegswapError(f"{index.path} holds no keypoints" if settings is None else
                               f"the keypoint matcher {settings['matcher']} of {index.path} is not installed")
        return None
    missing = len(index.without_keypoints())
    if missing:
        raise SegswapError(f"{index.path}: {missing} images have no keypoints yet; add them with `segswap index "
                           f"{index.root} --index {index.path}`, or search with --no-keypoints")
    return get_matcher(settings["matcher"], **settings["conf"]), calibrated_inlier_threshold(settings)


def _check_by_keypoints(index: CollectionIndex, keypointer, rgb: np.ndarray, box, hits: list[SearchHit],
                        threshold: float | None, inlier_threshold: float | None, on_progress: ProgressCallback | None) -> None:
    """Match the query's keypoints (inside ``box`` for a detail) to each hit's stored ones: its inliers,
    fused score, verdict and, where the keypoints decide, its box."""
    settings = index.detail_keypoint_settings if box is not None else None
    detailer = get_matcher(settings["matcher"], **settings["conf"]) if settings and is_installed(settings["matcher"]) else None
    queries = {}

    def query(layer: str) -> dict:  # extracted once, for the first hit that needs it
        if layer not in queries:
            queries[layer] = (keypointer.extract(rgb) if box is None else
                              box_keypoints(detailer if layer == "details" else keypointer, rgb, box))
        return queries[layer]

    for done, hit in enumerate(hits):
        report_step(on_progress, "checking by keypoints", done, len(hits))
        stored = index.keypoints(hit.image.id, "details") if detailer is not None else None
        layer, matcher = ("details", detailer) if stored is not None else ("keypoints", keypointer)
        found = matcher.match(None, None, feats_a=query(layer),
                              feats_b=stored if stored is not None else index.keypoints(hit.image.id))
        hit.inliers = found["geometry"].count
        carried = lambda: keypoint_box(found["keypoints_a"][found["inliers"]],  # noqa: E731
                                       found["keypoints_b"][found["inliers"]], box, hit.image.size)
        if box is not None and hit.inliers >= GUESS_MIN_INLIERS:
            hit.box, hit.box_from = carried(), "keypoint inliers"
        if threshold is None or inlier_threshold is None:
            continue
        hit.fused, hit.decided_by = fused_evidence(hit.matched, threshold, hit.inliers, inlier_threshold)
        hit.match = hit.fused >= 1
        if "keypoints" in hit.decided_by:
            hit.box, hit.box_from = carried(), "keypoints"


def box_keypoints(keypointer, rgb: np.ndarray, box) -> dict:
    """The keypoints inside ``box`` as ``keypointer`` would find them on the whole image (at its ``resize``),
    all of them: the box and a margin for the detector's windows are extracted at that scale, so a small
    detail keeps every keypoint it has rather than a share of the whole image's budget."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    margin = max(x1 - x0, y1 - y0) // 4 + 8
    cx0, cy0, cx1, cy1 = max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)
    crop = rgb[cy0:cy1, cx0:cx1]
    scale = keypointer.conf["resize"] / max(h, w)
    side = max(16, round(max(crop.shape[:2]) * scale))
    # The crop's own long side as extraction size, through one matcher per setting (not one per box size)
    dense = get_matcher(keypointer.name, **{**keypointer.conf, "max_keypoints": DETAIL_KEYPOINTS})
    found = dense.extract(crop, resize=side)
    xy = found["keypoints"] + np.array([cx0, cy0], np.float32)
    keep = (xy[:, 0] >= x0) & (xy[:, 0] < x1) & (xy[:, 1] >= y0) & (xy[:, 1] < y1)
    # in the whole image's pixels and frame, so the geometry's pixel threshold means what it means for it
    return {"keypoints": xy[keep], "descriptors": found["descriptors"][keep], "scores": found["scores"][keep],
            "image_size": (w, h), "scale": 1 / scale}


def fused_evidence(matched: float, matched_threshold: float | None, inliers: int, inlier_threshold: float | None,
                   at: float = 1.0) -> tuple[float, tuple[str, ...]]:
    """The fused score max(matched / its threshold, inliers / theirs) over the pieces whose threshold is
    given (at least one), and the names of those at or above ``at`` ("pair score", "keypoints")."""
    pieces = [(name, value / threshold) for name, value, threshold in
              (("pair score", matched, matched_threshold), ("keypoints", inliers, inlier_threshold)) if threshold is not None]
    return max(value for _, value in pieces), tuple(name for name, value in pieces if value >= at)


def keypoint_box(sources: np.ndarray, targets: np.ndarray, box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A hit's box from its inlier keypoints (``sources`` in the query, ``targets`` in the hit, N×2 each): the
    query ``box`` carried over by the similarity transform of the inliers (steadier than their homography
    on a few dozen points) when that stays a plausible box around them, else the inliers' extent; clipped
    to the hit's ``size`` (w, h)."""
    w, h = size
    extent = np.r_[targets.min(axis=0), targets.max(axis=0)]
    if box is not None and len(sources) >= 3:
        similarity, _ = cv2.estimateAffinePartial2D(sources.astype(np.float64), targets.astype(np.float64),
                                                    method=cv2.LMEDS)
        if similarity is not None:
            x0, y0, x1, y1 = box
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float) @ similarity[:, :2].T + similarity[:, 2]
            carried = np.r_[corners.min(axis=0), corners.max(axis=0)]
            area = lambda b: max(1.0, (b[2] - b[0]) * (b[3] - b[1]))  # noqa: E731
            if np.isfinite(carried).all() and CARRIED_BOX_AREA[0] <= area(carried) / area(extent) <= CARRIED_BOX_AREA[1]:
                extent = carried
    x0, y0, x1, y1 = extent
    return (int(np.clip(np.floor(x0), 0, w - 1)), int(np.clip(np.floor(y0), 0, h - 1)),
            int(np.clip(np.ceil(x1), 1, w)), int(np.clip(np.ceil(y1), 1, h)))


def flow_box(flow_ab: np.ndarray, mask_a: np.ndarray, box, query_size: tuple[int, int],
             size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The detail ``box`` (in a query image of ``query_size``, w×h) carried to the median point where the
    pair model's ``flow_ab`` takes the query's cells (those of ``mask_a`` above ``REGION_THRESHOLD``, else
    all), its size scaled as the index scales the two images; in an image of ``size`` (w, h)."""
    cells = mask_a > REGION_THRESHOLD
    landing = np.median(flow_ab[cells if cells.any() else np.ones_like(cells)], axis=0)
    w, h = size
    x0, y0, x1, y1 = box
    ratio = max(size) / max(query_size)  # the index brings both long sides to one size
    half_w, half_h = (x1 - x0) * ratio / 2, (y1 - y0) * ratio / 2
    cx, cy = landing[0] * w, landing[1] * h
    return (int(np.clip(cx - half_w, 0, w - 1)), int(np.clip(cy - half_h, 0, h - 1)),
            int(np.clip(np.ceil(cx + half_w), 1, w)), int(np.clip(np.ceil(cy + half_h), 1, h)))


def _verified_hits(index: CollectionIndex, query_feats: np.ndarray, candidates, top: int, box,
                   show_progress: bool, on_progress: ProgressCallback | None = None) -> list[SearchHit]:
    """The shortlist ranked by ArtMiner's verification, with its tolerance for a region or a whole image."""
    tolerance = TOLERANCE_CELLS_REGION if box is not None else TOLERANCE_CELLS_IMAGE
    hits = []
    for done, (image_id, _) in enumerate(tqdm(candidates, desc="verifying", unit="img", disable=not show_progress)):
        report_step(on_progress, "verifying", done, len(candidates))
        image = index.image(image_id)
        found = verify(query_feats, index.features(image_id), image.size, tolerance_cells=tolerance)
        hits.append(SearchHit(image, found.score, found.region, found.box,
                              box_from="verification" if found.box is not None else None))
    return sorted(hits, key=lambda hit: -hit.score)[:top]


def query_pixels(rgb: np.ndarray, box, size: int) -> np.ndarray:
    """The pixels the query's features are computed on: the image at the index's size, or the box cut
    out at the same scale (at least ``MIN_QUERY_SIDE`` on its short side), sides multiples of the stride."""
    if box is None:
        return resize_for_model(rgb, size)
    x0, y0, x1, y1 = box
    scale = size / max(rgb.shape[:2])
    scale *= max(1.0, MIN_QUERY_SIDE / (min(x1 - x0, y1 - y0) * scale))
    width = max(2, round((x1 - x0) * scale / STRIDE)) * STRIDE
    height = max(2, round((y1 - y0) * scale / STRIDE)) * STRIDE
    crop = rgb[y0:y1, x0:x1]
    interpolation = cv2.INTER_AREA if width < crop.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interpolation)


def landed_cells(flow_ab: np.ndarray, flow_ba: np.ndarray, mask_a: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """0/1 cells of b's ``grid`` (h, w) where the cells of ``mask_a`` above ``REGION_THRESHOLD`` land
    through ``flow_ab`` and whose ``flow_ba`` comes back within one cell (a match both ways)."""
    h, w = grid
    ha, wa = mask_a.shape
    rows, cols = np.nonzero(mask_a > REGION_THRESHOLD)
    points = flow_ab[rows, cols]
    ys, xs = np.clip((points[:, 1] * h).astype(int), 0, h - 1), np.clip((points[:, 0] * w).astype(int), 0, w - 1)
    back = flow_ba[ys, xs]
    mutual = (np.abs(back[:, 0] * wa - (cols + 0.5)) <= 1) & (np.abs(back[:, 1] * ha - (rows + 0.5)) <= 1)
    landed = np.zeros(grid, np.uint8)
    landed[ys[mutual], xs[mutual]] = 1
    return landed.astype(np.float32)


def region_box(mask: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1, end exclusive) of the token ``mask``'s connected blob above
    ``REGION_THRESHOLD`` with the most mass, in an image of ``size`` (w, h); None if no cell is above."""
    above = (mask > REGION_THRESHOLD).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    if count < 2:
        return None
    mass = np.bincount(labels.ravel(), weights=mask.ravel(), minlength=count)
    best = 1 + int(np.argmax(mass[1:]))
    x, y, w, h = (int(v) for v in stats[best, :4])
    return cells_to_pixels((x, y, x + w, y + h), mask.shape, size)


def _checked_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, x1 = max(0, min(x0, x1)), min(width, max(x0, x1))
    y0, y1 = max(0, min(y0, y1)), min(height, max(y0, y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise SegswapError(f"--box {box} leaves no area inside the {width}×{height} query image")
    return x0, y0, x1, y1
