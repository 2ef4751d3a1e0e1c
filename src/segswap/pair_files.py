"""Writing a pair result to disk: masks, overlay picture and result.json."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .io import load_image
from .io.files import write_bytes_atomic
from .pair import WARP_KEYS
from .viz.overlay import pair_overlay

#: Correspondences drawn on the overlay (the JSON keeps all of them).
OVERLAY_LINES = 60


def write_pair_outputs(out_dir, image_a, image_b, result: dict) -> dict:
    """Write ``mask_a.png``, ``mask_b.png`` (8-bit probabilities at input size), ``overlay.png`` and
    ``result.json`` to ``out_dir``; return the JSON summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rgb_a, rgb_b = load_image(image_a), load_image(image_b)
    for name, mask in (("mask_a.png", result["mask_a"]), ("mask_b.png", result["mask_b"])):
        _write_png(out_dir / name, (np.clip(mask, 0, 1) * 255).round().astype(np.uint8))
    found = result.get("keypoints")
    inliers = None if found is None else found["matches"][found["inliers"]]
    overlay = pair_overlay(rgb_a, rgb_b, result["mask_a"], result["mask_b"], result["correspondences"],
                           max_lines=OVERLAY_LINES, keypoints=inliers)
    _write_png(out_dir / "overlay.png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    summary = {
        "score": result["score"],
        "score_ba": result["score_ba"],
        # the fraction of each image at or above 0.5, where every mask is cut; not the soft masks' mean,
        # which the prior's averaging inflates with half its saliency everywhere
        "mask_area_a": float((result["mask_a"] >= 0.5).mean()),
        "mask_area_b": float((result["mask_b"] >= 0.5).mean()),
        "correspondences": [[round(float(v), 2) for v in row[:4]] + [round(float(row[4]), 4)] for row in result["correspondences"]],
        "model": result["model"],
        "weights": result["weights"],
        "backbone": result["backbone"],
        "size": result["input_size"],
        "view": result["view"],
        "prior": result.get("prior", False),
        "image_a": str(image_a),
        "image_b": str(image_b),
        "keypoints": keypoints_json(result.get("keypoints")),
        # a warp model's parameters (MaCoSNet), normalised coordinates: segswap.models.macosnet.transform_points
        **{key: np.asarray(result[key]).round(5).tolist() for key in WARP_KEYS if key in result},
    }
    write_bytes_atomic(out_dir / "result.json", json.dumps(summary, indent=1).encode())
    return summary


def keypoints_json(found: dict | None) -> dict | None:
    """``result["keypoints"]`` for result.json: counts, the homography, and the inlier matches
    ``[xa, ya, xb, yb, score]``."""
    if found is None:
        return None
    inliers = found["matches"][found["inliers"]]
    return {"matcher": found["matcher"], "num_keypoints": list(found["num_keypoints"]), "matches": len(found["matches"]),
            "geometry": found["geometry"].as_json(),
            "inlier_matches": [[round(float(v), 2) for v in row[:4]] + [round(float(row[4]), 4)] for row in inliers]}


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path}")
    write_bytes_atomic(path, data.tobytes())

