"""ArtMiner verification: planted transformations are recovered through outliers, a true pair outscores an
unrelated one, the detection box lands on a planted detail, and search re-ranks with it."""

import json

import cv2
import numpy as np
import pytest

import segswap
from segswap.backbone import backbone_tokens, get_backbone
from segswap.collection.search import search
from segswap.collection.update import update_index
from segswap.errors import SegswapError
from segswap.verify.ransac import (coarse_homography, fit_affine, fit_homography, mutual_nearest_neighbours,
                                   saliency_weights, verify)

SIZE = 224  # index and feature size: small grids keep the tests fast


def clutter(seed: int, height: int = 168, width: int = 224) -> np.ndarray:
    """An RGB image no other seed resembles: smooth colour noise under random filled shapes and lines."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (6, 8, 3)).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        shape = rng.integers(3)
        if shape == 0:
            cv2.circle(image, (x, y), int(rng.integers(4, 24)), colour, -1)
        elif shape == 1:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(6, 40)), y + int(rng.integers(6, 40))), colour, -1)
        else:
            cv2.line(image, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour, 3)
    return image


def iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


@pytest.fixture(scope="module")
def backbone():
    return get_backbone()


def features(backbone, rgb: np.ndarray, size: int = SIZE) -> np.ndarray:
    return backbone_tokens(backbone, rgb, size).numpy()


# -- the robust fits ------------------------------------------------------------------------------------
def test_affine_ransac_recovers_a_planted_affine_through_40_percent_outliers():
    rng = np.random.default_rng(0)
    planted = np.array([[0.9, -0.2, 15.0], [0.25, 1.1, -8.0]])
    source = rng.uniform(0, 300, (150, 2))
    target = source @ planted[:, :2].T + planted[:, 2] + rng.normal(0, 0.3, (150, 2))
    target[:60] = rng.uniform(0, 300, (60, 2))
    fitted = fit_affine(source, target, tolerance=3.0)
    np.testing.assert_allclose(fitted[:, :2], planted[:, :2], atol=0.01)
    np.testing.assert_allclose(fitted[:, 2], planted[:, 2], atol=1.0)
    assert fit_affine(source[:2], target[:2], tolerance=3.0) is None


def test_homography_ransac_recovers_a_planted_homography_through_half_outliers():
    rng = np.random.default_rng(1)
    planted = np.array([[0.85, 0.2, 40.0], [-0.1, 0.95, 20.0], [2e-4, -1e-4, 1.0]])
    size_a, size_b = (400, 300), (500, 350)
    points_a = rng.uniform(0, 1, (200, 2)) * size_a
    points_b = cv2.perspectiveTransform(points_a.reshape(-1, 1, 2), planted).reshape(-1, 2) + rng.normal(0, 0.5, (200, 2))
    points_b[:100] = rng.uniform(0, 1, (100, 2)) * size_b
    homography, inliers = fit_homography(points_a, points_b, size_a, size_b)
    corners = np.array([[0, 0], [400, 0], [400, 300], [0, 300]], np.float64).reshape(-1, 1, 2)
    error = np.linalg.norm(cv2.perspectiveTransform(corners, homography) - cv2.perspectiveTransform(corners, planted), axis=2)
    assert error.mean() < 2.0
    assert inliers[100:].mean() > 0.95 and inliers[:100].mean() < 0.2
    assert fit_homography(points_a[:3], points_b[:3], size_a, size_b)[0] is None


def test_mutual_nearest_neighbours_keep_only_pairs_that_choose_each_other():
    similarity = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.3, 0.7]])
    rows, columns = mutual_nearest_neighbours(similarity)
    assert rows.tolist() == [0, 2] and columns.tolist() == [0, 2]  # row 1 prefers column 0, which prefers row 0
    assert len(mutual_nearest_neighbours(np.zeros((0, 4)))[0]) == 0


def test_saliency_is_low_on_uniform_regions_and_high_on_distinctive_cells():
    rng = np.random.default_rng(2)
    feats = np.repeat(np.eye(8)[:, :1, None], 5, axis=1).repeat(6, axis=2)  # every cell the same: 8×5×6
    feats[:, 2, 3] = rng.normal(size=8)
    feats[:, 2, 3] /= np.linalg.norm(feats[:, 2, 3])
    weights = saliency_weights(feats)
    assert weights.shape == (5, 6)
    assert weights[0, 0] == pytest.approx(0.0, abs=1e-6)  # a corner cell with 2 identical neighbours
    assert weights[2, 3] > 0.5 and weights[2, 3] == weights.max()


# -- ArtMiner's verification ----------------------------------------------------------------------------
def test_verification_recovers_a_planted_shift_and_rejects_misplaced_copies():
    """Query cells copied into a target grid shifted by (4, 3) cells, 8 of them moved elsewhere instead."""
    rng = np.random.default_rng(3)
    unit = lambda *shape: (lambda v: v / np.linalg.norm(v, axis=0))(rng.normal(size=(64, *shape)))
    query, target = unit(10, 10), unit(16, 18)
    target[:, 3:13, 4:14] = query
    moved = [(2, 5), (4, 4), (5, 7), (6, 2), (7, 8), (3, 3), (8, 5), (5, 5)]
    for k, (r, c) in enumerate(moved):
        target[:, 3 + r, 4 + c] = unit(1)[:, 0]  # its planted place holds noise ...
        target[:, k // 4 * 15, 1 + k % 4 * 4] = query[:, r, c]  # ... and the copy sits on the target's edge
    found = verify(query, target, (18 * 16, 16 * 16))
    assert found.matches >= 100 and len(found.inliers) == 92
    np.testing.assert_allclose(found.affine, [[1, 0, -64], [0, 1, -48]], atol=1e-3)
    assert found.score == pytest.approx(0.92, abs=0.02)  # cosine 1 × saliency ≈ 1 per inlier, over 100 cells
    assert found.box == (64, 48, 224, 208)
    assert found.region.sum() == 92 and found.region[8, 10] == 1 and found.region[8, 9] == 0


def test_a_true_pair_scores_far_above_an_unrelated_one(backbone):
    scene = clutter(10)
    rotated = cv2.warpAffine(scene, cv2.getRotationMatrix2D((112, 84), 8, 0.85), (224, 168), borderValue=(127, 127, 127))
    query = features(backbone, scene)
    true = verify(query, features(backbone, rotated), (224, 168))
    unrelated = verify(query, features(backbone, clutter(11)), (224, 168))
    assert true.score > 0.1
    assert true.score > 5 * unrelated.score  # measured ≈ 0.19 against ≈ 0.017
    assert len(true.inliers) > 2 * len(unrelated.inliers)


def test_the_detection_box_covers_a_planted_detail(backbone):
    source, target = clutter(20), clutter(21, 240, 320)
    detail = source[40:136, 64:160]  # 96×96
    target[100:196, 180:276] = detail
    found = verify(features(backbone, detail, 96), features(backbone, target, 320), (320, 240), tolerance_cells=1)
    assert iou(found.box, (180, 100, 276, 196)) > 0.5


def test_coarse_homography_pools_scales_and_obeys_the_keep_masks(backbone):
    scene = clutter(30, 240, 320)
    shifted = np.roll(scene, (32, 48), axis=(0, 1))
    pyramid = [features(backbone, shifted, s) for s in (320, 384)]
    found = coarse_homography([features(backbone, scene, 320)], (320, 240), pyramid, (320, 240))
    assert found.inliers >= 100 and found.points_a.shape == found.points_b.shape == (found.inliers, 2)
    corners = np.array([[0, 0], [320, 0], [320, 240], [0, 240]], np.float64).reshape(-1, 1, 2)
    np.testing.assert_allclose(cv2.perspectiveTransform(corners, found.homography)[:, 0], corners[:, 0] + (48, 32), atol=2)
    keep = np.zeros((240, 320), np.float32)
    keep[:, :160] = 1
    left_only = coarse_homography([features(backbone, scene, 320)], (320, 240), pyramid, (320, 240), keep_a=keep)
    assert left_only.matches < found.matches and (left_only.points_a[:, 0] < 160).all()


# -- search re-ranked by verification -------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted_collection(tmp_path_factory):
    """10 cluttered images; a 96-px detail of a separate query image is pasted into image 04."""
    root = tmp_path_factory.mktemp("ransac_search")
    query = clutter(40)
    (root / "collection").mkdir()
    for i in range(10):
        image = clutter(41 + i)
        if i == 4:
            image[50:146, 100:196] = query[40:136, 90:186]
        cv2.imwrite(str(root / "collection" / f"{i:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "query.png"), cv2.cvtColor(query, cv2.COLOR_RGB2BGR))
    index, _ = update_index(root / "collection", root / "idx", size=SIZE, show_progress=False)
    return index, root / "query.png", (90, 40, 186, 136), root / "collection" / "04.png"


def test_search_reranked_by_verification_finds_the_detail_and_its_box(planted_collection):
    index, query, detail, target = planted_collection
    matcher = segswap.load("correlation", size=SIZE, backbone=index.backbone)
    result = search(index, query, matcher, box=detail, top=3, rerank="ransac")
    assert result.hits[0].image.path == target
    assert result.hits[0].score > 2 * result.hits[1].score
    assert iou(result.hits[0].box, (100, 50, 196, 146)) > 0.4
    assert result.hits[0].mask.shape == index.image(result.hits[0].image.id).grid
    with pytest.raises(SegswapError, match="--rerank must be one of model, ransac"):
        search(index, query, matcher, rerank="sift")


def test_search_command_takes_rerank_ransac(planted_collection, tmp_path):
    from typer.testing import CliRunner

    from segswap.cli import app

    index, query, detail, target = planted_collection
    out = tmp_path / "hits.json"
    result = CliRunner().invoke(app, ["search", str(query), "--index", str(index.path), "--box", ",".join(map(str, detail)),
                                      "--top", "2", "--rerank", "ransac", "--json", str(out), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    hits = json.loads(out.read_text())
    assert hits[0]["path"] == str(target) and len(hits) == 2
    report = (tmp_path / "r.html").read_text()
    assert "re-ranked by ArtMiner" in report and "pair model" not in report
    refused = CliRunner().invoke(app, ["search", str(query), "--index", str(index.path), "--rerank", "ransac",
                                       "--model", "segswap"])
    assert refused.exit_code != 0 and "--rerank ransac uses none" in str(refused.exception or refused.output)
