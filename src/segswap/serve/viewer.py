"""The viewer's work, apart from HTTP: what a search, a side-by-side pair and a discovery return to a
page, run on the background lanes of :mod:`segswap.serve.jobs`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from ..collection.methods import DISCOVERY_DESIGNS, check_design
from ..io.files import write_bytes_atomic
from .catalog import Catalog, open_catalog
from ..errors import SegswapError
from .jobs import Job, Lane, stop_if_cancelled
from .pictures import PictureCache
from .settings import ViewerSettings
from .results import DISCOVERY_FILE, OVERRIDES_FILE, Cosegmentation, read_discovery, viewer_folder

#: Most results a page may ask a search for, and the shortlist re-ranked (as `segswap search`).
MAX_TOP = 50
SHORTLIST = 100
#: Correspondence lines drawn in the side-by-side view at most (the most confident cells).
MAX_LINES = 40
#: Query features of this many recent (image, box) queries are kept for their side-by-side views.
QUERY_CACHE = 8


class Workspace:
    """What one lane's jobs use: the index opened on the lane's thread, and the shared matcher."""

    def __init__(self, viewer: "Viewer"):
        from ..collection.index import CollectionIndex

        self.index = CollectionIndex(viewer.settings.index)
        self.viewer = viewer
        self.query_features: dict[tuple, np.ndarray] = {}

    @property
    def matcher(self):
        return self.viewer.matcher()

    def close(self) -> None:
        self.index.close()


class Viewer:
    """One index served: its catalogue, picture cache, saved results and the two background lanes."""

    def __init__(self, settings: ViewerSettings):
        self.settings = settings
        self.catalog: Catalog = open_catalog(settings.index)
        self.folder = viewer_folder(settings.index)
        self.pictures = PictureCache(self.folder / "pictures")
        self.cosegmentation = (Cosegmentation(settings.cosegment, self.catalog, self.folder / OVERRIDES_FILE)
                               if settings.cosegment else None)
        self.search_lane = Lane("search", lambda: Workspace(self))
        self.discovery_lane = Lane("discovery", lambda: Workspace(self))
        self._matcher = None
        self._matcher_lock = threading.Lock()

    def close(self) -> None:
        self.search_lane.shutdown()
        self.discovery_lane.shutdown()

    # -- the model -----------------------------------------------------------------------------------
    def matcher(self):
        """The pair model, loaded on first use (by whichever lane needs it first) for the index's
        backbone and size; without --model/--weights and no shipped weights, the training-free one."""
        with self._matcher_lock:
            if self._matcher is None:
                from ..collection.index import CollectionIndex
                from ..collection.learned import learned_for
                from ..pair import DEFAULT_MODEL, load, shipped_weights_path

                model, weights = self.settings.model, self.settings.weights
                if model is None and weights is None and shipped_weights_path(DEFAULT_MODEL) is None:
                    model = "correlation"
                with CollectionIndex(self.settings.index) as index:
                    learned = learned_for(index, model, weights, self.settings.shipped)  # `segswap learn`'s, if any
                    matcher = load(model, weights, backbone=index.backbone, size=index.size, learned=learned)
                for module in matcher.model.modules():  # a cancelled job stops inside the model
                    module.register_forward_pre_hook(stop_if_cancelled)
                self._matcher = matcher
            return self._matcher

    def info(self) -> dict:
        settings = self.settings
        return {"index": str(settings.index), "root": str(self.catalog.root), "images": len(self.catalog),
                "folders": self.catalog.folders(), "model": settings.model or "default",
                "cosegment": str(settings.cosegment) if settings.cosegment else None,
                "discovery": str(self.discovery_path()) if self.discovery_path().is_file() else None,
                "designs": list(DISCOVERY_DESIGNS)}

    # -- search ----------------------------------------------------------------------------------------
    def submit_search(self, image_id: int, box: tuple[int, int, int, int] | None, top: int) -> Job:
        """Queue a search for image ``image_id`` (or the ``box`` of it); cancels the search running before."""
        image = self.image(image_id)
        top = min(max(1, top), MAX_TOP)

        def work(space: Workspace, job: Job) -> dict:
            from ..collection.search import search

            result = search(space.index, self.catalog.absolute(image), space.matcher, box=box, top=top,
                            shortlist=SHORTLIST, on_progress=job.report)
            job.report("done", len(result.hits), len(result.hits))
            return {"query": image.id, "box": list(result.query_box) if result.query_box else None,
                    "shortlisted": result.shortlisted, "threshold": result.threshold,
                    "threshold_source": result.threshold_source, "inlier_threshold": result.inlier_threshold,
                    "hits": [{"id": hit.image.id, "path": self.catalog.get(hit.image.id).path if self.catalog.get(hit.image.id)
                              else str(hit.image.path), "score": round(hit.score, 4),
                              "matched": None if hit.matched is None else round(hit.matched, 4), "match": hit.match,
                              "inliers": hit.inliers, "fused": None if hit.fused is None else round(hit.fused, 4),
                              "decided_by": list(hit.decided_by),
                              "box": list(hit.box) if hit.box else None, "box_from": hit.box_from, "width": hit.image.size[0],
                              "height": hit.image.size[1], "mask": np.round(hit.mask.astype(float), 2).tolist(),
                              "canvas": None if hit.image.canvas is None else hit.image.canvas.as_json(hit.box, hit.image.size)}
                             for hit in result.hits]}

        return self.search_lane.submit("search", work)

    def pair(self, query_id: int, box: tuple[int, int, int, int] | None, target_id: int):
        """A future of the side-by-side view of the query (or its box) and ``target_id``: both masks on
        their token grids and the most confident correspondences, in each image's own pixels."""
        query, target = self.image(query_id), self.image(target_id)
        box = inside(box, query.size) if box else None

        def work(space: Workspace) -> dict:
            from ..collection.predictions import predict_pairs

            features = self._query_features(space, query, box)
            (pred,) = predict_pairs(space.matcher, lambda i: features if i < 0 else space.index.features(i),
                                    [(-1, target.id)], show_progress=False)
            return {"query": query.id, "target": target.id, "box": list(box) if box else None,
                    "mask_query": np.round(pred.mask_a.astype(float), 2).tolist(), "mask_target": np.round(pred.mask_b.astype(float), 2).tolist(),
                    "lines": correspondence_lines(pred, query.size, box, target.size)}

        return self.search_lane.run(work)

    def _query_features(self, space: Workspace, image, box) -> np.ndarray:
        from ..collection.search import query_pixels
        from ..io import load_image, pixels_to_tensor

        key = (image.id, box)
        if key not in space.query_features:
            pixels = query_pixels(load_image(self.catalog.absolute(image)), box, space.index.size)
            while len(space.query_features) >= QUERY_CACHE:
                space.query_features.pop(next(iter(space.query_features)))
            space.query_features[key] = space.matcher.features(pixels_to_tensor(pixels))[0].numpy()
        return space.query_features[key]

    # -- discovery -----------------------------------------------------------------------------------
    def discovery_path(self) -> Path:
        return self.settings.discovery or self.folder / DISCOVERY_FILE

    def submit_discovery(self, design: str = DISCOVERY_DESIGNS[0], top_k: int | None = None,
                         clusters: int | None = None, min_evidence: float = 1.0) -> Job:
        """Run discovery by ``design`` (the default `segswap discover`'s; ``top_k`` None: the design's) in
        the background, or return the one running, and save it beside the index. An unknown design, or an
        option of the other design, is a :class:`SegswapError` before anything is queued."""
        check_design(design, clusters, min_evidence)
        running = self.discovery_lane.active("discover")
        if running is not None:
            return running

        def work(space: Workspace, job: Job) -> dict:
            from ..collection.discover import discovery_json, run_discovery

            found = discovery_json(run_discovery(space.index, space.matcher, design=design, top_k=top_k,
                                                 clusters=clusters, min_evidence=min_evidence, show_progress=False,
                                                 on_progress=job.report))
            target = self.folder / DISCOVERY_FILE
            write_bytes_atomic(target, (json.dumps(found, indent=1) + "\n").encode())
            self.settings.discovery = None  # the page now shows this run, not a file given at start
            repeats = sum(p["kind"] == "repeat" for p in found["patterns"])
            return {"design": design, "patterns": len(found["patterns"]), "repeats": repeats,
                    "near_duplicates": len(found["patterns"]) - repeats, "saved": str(target)}

        return self.discovery_lane.submit("discover", work, supersede=False)

    def discovery(self) -> dict | None:
        """The saved discovery the page shows, or None if there is none yet."""
        path = self.discovery_path()
        return read_discovery(path, self.catalog) if path.is_file() else None

    def image(self, image_id: int):
        """The catalogue's image ``image_id``; KeyError (a 404 for the page) if there is none."""
        image = self.catalog.get(image_id)
        if image is None:
            raise KeyError(image_id)
        return image


def inside(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1, ordered) cut to an image of ``size`` (w, h), as a search cuts its box; a
    one-line error if nothing of it is left."""
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(size[0], box[2]), min(size[1], box[3])
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise SegswapError(f"box {','.join(map(str, box))} leaves no area inside the {size[0]}×{size[1]} image")
    return x0, y0, x1, y1


def correspondence_lines(pred, query_size, box, target_size) -> list[list[float]]:
    """``[x_query, y_query, x_target, y_target, confidence]`` for the query's confident cells (its mask
    above 0.5) that match both ways, the most confident first, at most :data:`MAX_LINES`; query
    points in the query image's pixels (inside ``box`` for a detail), target points in the target's."""
    from ..collection.search import REGION_THRESHOLD

    ha, wa = pred.mask_a.shape
    hb, wb = pred.mask_b.shape
    x0, y0, x1, y1 = box if box else (0, 0, *query_size)
    rows, cols = np.nonzero(pred.mask_a > REGION_THRESHOLD)
    ends = pred.flow_ab[rows, cols]
    br = np.clip((ends[:, 1] * hb).astype(int), 0, hb - 1)
    bc = np.clip((ends[:, 0] * wb).astype(int), 0, wb - 1)
    back = pred.flow_ba[br, bc]
    mutual = (np.abs(back[:, 0] * wa - (cols + 0.5)) <= 1) & (np.abs(back[:, 1] * ha - (rows + 0.5)) <= 1)
    confidence = pred.mask_a[rows, cols] * pred.mask_b[br, bc]
    order = [k for k in np.argsort(-confidence) if mutual[k]][:MAX_LINES]
    return [[round(x0 + (cols[k] + 0.5) / wa * (x1 - x0), 1), round(y0 + (rows[k] + 0.5) / ha * (y1 - y0), 1),
             round(float(ends[k, 0]) * target_size[0], 1), round(float(ends[k, 1]) * target_size[1], 1),
             round(float(confidence[k]), 3)] for k in order]
