"""Segment sources: where the objects that get swapped come from.

Three layouts are read:

* YOLO-seg: ``images/**/<stem>.<ext>`` with ``labels/**/<stem>.txt`` lines ``class x1 y1 x2 y2 ...``
  (polygon vertices normalised to [0, 1]);
* co-segmentation: ``images/<group>/<stem>.<ext>`` with ``groundtruth/<group>/<stem>.png``
  (255 = object; 128 = unlabelled, not object);
* plain photo folders, whose segments are found without labels (:mod:`segswap.synth.saliency`).

Scanning happens once, in the main process; it decodes every image so unreadable files are counted
and skipped here rather than failing later in a worker. The result is a JSON-able catalogue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError, SegswapError
from ..io import load_image
from ..io.paths import list_images

#: Segments smaller than this fraction of their image, or with a bbox side under MIN_SIDE px, are too
#: small to be enlarged to 20-100 % of a 480-px frame without turning to mush.
MIN_AREA_FRACTION = 0.01
MIN_SIDE = 24


@dataclass(frozen=True)
class Segment:
    """One object: a polygon (normalised [0, 1] vertices) or a mask file, on one source image."""

    uid: str
    label: str
    polygon: tuple[float, ...] | None = None  # x1, y1, x2, y2, ... normalised
    mask_path: str | None = None


@dataclass
class SourceImage:
    path: str
    segments: list[Segment] = field(default_factory=list)


@dataclass
class ScanReport:
    sources: list[SourceImage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def detect_layout(folder: Path) -> str:
    """``"yolo"``, ``"coseg"`` or ``"photos"`` for a segment folder."""
    if (folder / "images").is_dir() and (folder / "labels").is_dir():
        return "yolo"
    if (folder / "images").is_dir() and (folder / "groundtruth").is_dir():
        return "coseg"
    return "photos"


def read_yolo(folder: Path, report: ScanReport) -> None:
    images_dir, labels_dir = folder / "images", folder / "labels"
    for image_path in list_images(images_dir):
        rel = image_path.relative_to(images_dir)
        label_path = labels_dir / rel.with_suffix(".txt")
        if not label_path.is_file():
            continue  # YOLO convention: no label file means no objects
        shape = _image_shape(image_path, report)
        if shape is None:
            continue
        try:
            lines = label_path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            report.warnings.append(f"{label_path}: cannot read label file ({err.__class__.__name__})")
            continue
        source = SourceImage(str(image_path.resolve()))
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            polygon, problem = _parse_yolo_line(line)
            if problem:
                report.warnings.append(f"{label_path}:{number}: {problem}; line skipped")
                continue
            if _polygon_big_enough(polygon, shape):
                source.segments.append(Segment(f"{rel}:{number}", line.split()[0], tuple(polygon.ravel().tolist())))
        if source.segments:
            report.sources.append(source)


def _parse_yolo_line(line: str) -> tuple[np.ndarray | None, str | None]:
    fields = line.split()
    try:
        values = np.array([float(v) for v in fields[1:]])
    except ValueError:
        return None, "non-numeric value"
    if len(values) < 6 or len(values) % 2:
        return None, f"expected a class and at least 3 x y pairs, got {len(fields)} fields"
    if not np.isfinite(values).all() or values.min() < -0.01 or values.max() > 1.01:
        return None, "coordinates outside [0, 1]"
    return np.clip(values, 0.0, 1.0).reshape(-1, 2), None


def _polygon_big_enough(polygon: np.ndarray, shape: tuple[int, int]) -> bool:
    h, w = shape
    pts = polygon * [w, h]
    area = abs(cv2.contourArea(pts.astype(np.float32)))
    side = min(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))
    return area >= MIN_AREA_FRACTION * h * w and side >= MIN_SIDE


def read_coseg(folder: Path, report: ScanReport) -> None:
    images_dir, truth_dir = folder / "images", folder / "groundtruth"
    for image_path in list_images(images_dir):
        rel = image_path.relative_to(images_dir)
        mask_path = truth_dir / rel.with_suffix(".png")
        if not mask_path.is_file():
            continue
        shape = _image_shape(image_path, report)
        if shape is None:
            continue
        try:
            mask = load_image(mask_path)[..., 0] == 255
        except ImageError as err:
            report.warnings.append(f"{err}; skipped")
            continue
        if mask.shape != shape:
            report.warnings.append(f"{mask_path}: mask is {mask.shape[1]}×{mask.shape[0]}, image is {shape[1]}×{shape[0]}; skipped")
            continue
        if _mask_big_enough(mask):
            label = rel.parts[0] if len(rel.parts) > 1 else ""
            report.sources.append(SourceImage(str(image_path.resolve()), [Segment(str(rel), label, mask_path=str(mask_path.resolve()))]))


def _mask_big_enough(mask: np.ndarray) -> bool:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return False
    side = min(np.ptp(xs) + 1, np.ptp(ys) + 1)
    return len(xs) >= MIN_AREA_FRACTION * mask.size and side >= MIN_SIDE


def _image_shape(path: Path, report: ScanReport) -> tuple[int, int] | None:
    """(h, w) of a readable image; an unreadable one is reported and skipped."""
    try:
        return load_image(path).shape[:2]
    except ImageError as err:
        report.warnings.append(f"{err}; skipped")
        return None


def readable_images(folder: Path, report: ScanReport) -> list[str]:
    """Resolved paths of the decodable images under ``folder`` (others reported)."""
    return [str(p.resolve()) for p in list_images(folder) if _image_shape(p, report) is not None]


def read_unsupervised(folder: Path, report: ScanReport) -> None:
    """Segments of plain photos: the salient objects :mod:`segswap.synth.saliency` finds."""
    from .saliency import SaliencyModel, salient_polygons  # loads onnxruntime only when needed

    model = SaliencyModel()
    for path in list_images(folder):
        try:
            rgb = load_image(path)
        except ImageError as err:
            report.warnings.append(f"{err}; skipped")
            continue
        polygons = salient_polygons(rgb, model(rgb))
        segments = [
            Segment(f"{path.name}:salient{k}", "salient", tuple(np.round(poly, 5).ravel().tolist()))
            for k, poly in enumerate(polygons)
        ]
        if segments:
            report.sources.append(SourceImage(str(path.resolve()), segments))


def scan_sources(folders: list[Path], unsupervised: bool) -> ScanReport:
    """Read every segment folder into one catalogue."""
    report = ScanReport()
    for folder in folders:
        if not folder.is_dir():
            raise SegswapError(f"{folder}: segment folder not found")
        layout = detect_layout(folder)
        if layout == "yolo":
            read_yolo(folder, report)
        elif layout == "coseg":
            read_coseg(folder, report)
        elif unsupervised:
            read_unsupervised(folder, report)
        else:
            raise SegswapError(
                f"{folder}: no labels/ or groundtruth/ folder beside images/; "
                "pass --unsupervised to find segments in plain photos"
            )
    return report


def render_mask(segment: Segment, shape: tuple[int, int]) -> np.ndarray:
    """Full-resolution uint8 mask (0/255) of a segment on its image."""
    h, w = shape
    if segment.polygon is not None:
        pts = np.asarray(segment.polygon, dtype=np.float64).reshape(-1, 2) * [w, h] - 0.5
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=2)
        return mask
    return np.where(load_image(segment.mask_path)[..., 0] == 255, 255, 0).astype(np.uint8)


def catalogue_to_json(sources: list[SourceImage]) -> list[dict]:
    return [{"path": s.path, "segments": [asdict(seg) for seg in s.segments]} for s in sources]


def catalogue_from_json(items: list[dict]) -> list[SourceImage]:
    out = []
    for item in items:
        segs = []
        for seg in item["segments"]:
            polygon = tuple(seg["polygon"]) if seg.get("polygon") is not None else None
            segs.append(Segment(seg["uid"], seg["label"], polygon, seg.get("mask_path")))
        out.append(SourceImage(item["path"], segs))
    return out
