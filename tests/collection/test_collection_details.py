"""The finer keypoint layer for detail queries (`segswap index --details`) and `segswap eval details`."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import segswap
from segswap.collection.search import BOX_SOURCES, flow_box, search
from segswap.collection.template import DetailTemplate, template_sizes
from segswap.collection.update import update_index
from segswap.errors import SegswapError
from segswap.grid import box_iou
from segswap.evaluation.details import average_precision, detail_scores, read_detail_truth
from segswap.io import load_image


@pytest.fixture(scope="module")
def small_detail(tmp_path_factory, kit):
    """Eight 640×480 cluttered images; a 64-px photograph (a tenth of their width, OpenCV's box.png) is
    pasted into two of them."""
    from segswap.keypoints import is_installed

    if not is_installed("xfeat"):
        pytest.skip("keypoint wheels not installed")
    root = tmp_path_factory.mktemp("details")
    rng = np.random.default_rng(39)
    photo = cv2.resize(load_image(Path(segswap.__file__).parent / "data" / "box.png"), (64, 44),
                       interpolation=cv2.INTER_AREA)
    boxes = {}
    for i in range(8):
        image = cv2.resize(kit.clutter(rng, 240, 320), (640, 480), interpolation=cv2.INTER_LINEAR)
        if i in (2, 6):
            x, y = (400, 90) if i == 2 else (120, 330)
            image[y:y + 44, x:x + 64] = photo
            boxes[f"{i:02d}.png"] = (x, y, x + 64, y + 44)
        kit.save(root / "images" / f"{i:02d}.png", image)
    index, summary = update_index(root / "images", root / "idx", size=kit.SIZE, show_progress=False, details=True)
    return root, index, summary, boxes


def test_the_detail_layer_is_stored_and_kept_up_to_date(small_detail, kit):
    root, index, summary, _ = small_detail
    assert summary.detail_keypoints_added == 8 and index.without_keypoints("details") == []
    stored = index.keypoints(1, "details")
    coarse = index.keypoints(1)
    assert index.detail_keypoint_settings["conf"]["resize"] == 1600
    assert len(stored["keypoints"]) > 1.5 * len(coarse["keypoints"]) and stored["image_size"] == (640, 480)
    assert stored["scale"] == pytest.approx(640 / 1600)
    # a copy of the index: a changed image gets its layer again on the next update, without --details
    import shutil

    copy = root.parent / (root.name + "_copy")
    shutil.copytree(root, copy)
    from segswap.collection.index import CollectionIndex

    with CollectionIndex(copy / "idx", snapshot=False) as moved:
        moved.db.execute("UPDATE settings SET value = ? WHERE key = 'root'", (str(copy / "images"),))
        moved.db.commit()
    kit.save(copy / "images" / "00.png", np.ascontiguousarray(load_image(copy / "images" / "00.png")[:, ::-1]))
    (copy / "images" / "07.png").unlink()
    updated, summary = update_index(copy / "images", copy / "idx", show_progress=False)
    assert summary.updated == 1 and summary.removed == 1 and summary.detail_keypoints_added == 1
    assert updated.without_keypoints("details") == []
    assert updated.db.execute("SELECT COUNT(*) FROM detail_keypoints").fetchone()[0] == 7


def test_a_detail_a_tenth_of_the_width_comes_back_with_its_box(small_detail, matcher, monkeypatch):
    root, index, _, boxes = small_detail
    monkeypatch.setattr("segswap.collection.search.calibrated_inlier_threshold", lambda settings, records=None: 10.0)
    plain = search(index, root / "images" / "02.png", matcher, box=boxes["02.png"], top=4)
    high = 10 * max(hit.matched for hit in plain.hits)  # a pair-score threshold nothing reaches: keypoints decide
    result = search(index, root / "images" / "02.png", matcher, box=boxes["02.png"], top=4, threshold=high)
    (copy,) = [hit for hit in result.hits if hit.image.path.name == "06.png"]
    assert copy.match and "keypoints" in copy.decided_by and box_iou(copy.box, boxes["06.png"]) >= 0.5, copy.box
    assert all(not hit.match for hit in result.hits if hit.image.path.name not in boxes)


def test_a_copy_under_the_thresholds_still_gets_its_box_as_a_guess(small_detail, matcher, monkeypatch):
    root, index, _, boxes = small_detail
    # thresholds nothing reaches: no verdict says match, yet the copy's box is where it is
    monkeypatch.setattr("segswap.collection.search.calibrated_inlier_threshold", lambda settings, records=None: 1e6)
    result = search(index, root / "images" / "02.png", matcher, box=boxes["02.png"], top=4, threshold=1e6)
    (copy,) = [hit for hit in result.hits if hit.image.path.name == "06.png"]
    assert not copy.match and copy.decided_by == ()
    assert copy.box_from == "keypoint inliers" and box_iou(copy.box, boxes["06.png"]) >= 0.5, copy.box
    assert all(hit.box is not None and hit.box_from in BOX_SOURCES for hit in result.hits)


def test_the_flow_guess_carries_the_query_box_to_where_its_cells_land():
    flow = np.zeros((3, 4, 2), np.float32)
    flow[...] = (0.9, 0.9)  # cells outside the detail land elsewhere
    flow[1, 1:3] = (0.25, 0.5)
    mask = np.zeros((3, 4), np.float32)
    mask[1, 1:3] = 1
    # a 40×20 box in a 400×300 query, carried into an 800×600 image: twice the size, centred at (200, 300)
    assert flow_box(flow, mask, (100, 100, 140, 120), (400, 300), (800, 600)) == (160, 280, 240, 320)
    # no cell above the threshold: all cells vote (the median of mostly (0.9, 0.9))
    x0, y0, x1, y1 = flow_box(flow, np.zeros_like(mask), (100, 100, 140, 120), (400, 300), (800, 600))
    assert (x0 + x1) / 2 == pytest.approx(720, abs=1) and (y0 + y1) / 2 == pytest.approx(540, abs=1)


def test_detail_scores_count_boxes_and_rankings(tmp_path):
    assert average_precision(["a", "x", "b"], {"a", "b"}) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(["x", "y"], {"a"}) == 0
    (tmp_path / "images").mkdir()
    for name in ("q.png", "t.png", "u.png"):
        cv2.imwrite(str(tmp_path / "images" / name), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "truth.json").write_text(json.dumps({"queries": [
        {"image": "q.png", "box": [0, 0, 4, 4], "targets": [{"image": "t.png", "box": [0, 0, 4, 4], "kind": "copy"},
                                                           {"image": "u.png", "box": [4, 4, 8, 8], "kind": "depiction"}]}]}))
    queries = read_detail_truth(tmp_path)
    scores = detail_scores(queries, [[("t.png", (0, 0, 4, 3)), ("u.png", (0, 0, 4, 4))]])
    assert scores["map"] == 1.0 and scores["box_found"] == 0.5
    assert scores["box_found_by_kind"] == {"copy": 1.0, "depiction": 0.0}
    (tmp_path / "truth.json").write_text(json.dumps({"queries": [{"image": "gone.png", "box": [0, 0, 1, 1],
                                                                  "targets": []}]}))
    with pytest.raises(SegswapError, match="not in images/"):
        read_detail_truth(tmp_path)


def test_eval_details_refuses_a_folder_without_truth_in_one_line(tmp_path, run_cli):
    (tmp_path / "images").mkdir()
    done = run_cli("eval", "details", str(tmp_path), "--work", str(tmp_path / "w"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "truth.json" in done.stderr


def test_template_sizes_run_from_three_cells_to_the_whole_image():
    sizes = template_sizes(48)
    assert sizes[0] == 3 and sizes[-1] <= 48 and sizes[-1] * 1.25 > 48
    assert sizes == sorted(set(sizes)) and all(b / a <= 1.34 for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("condition", ["none", "line_engraving"])
def test_the_template_finds_a_detail_at_another_size_in_a_redrawn_picture(kit, condition):
    from segswap.synth.conditions import apply_condition

    rng = np.random.default_rng(7)
    photo = load_image(Path(segswap.__file__).parent / "data" / "box.png")
    query = cv2.resize(kit.clutter(rng, 240, 320), (640, 480), interpolation=cv2.INTER_LINEAR)
    query[100:144, 300:364] = cv2.resize(photo, (64, 44), interpolation=cv2.INTER_AREA)
    other = cv2.resize(kit.clutter(rng, 240, 320), (800, 600), interpolation=cv2.INTER_LINEAR)
    other[380:450, 150:252] = cv2.resize(photo, (102, 70), interpolation=cv2.INTER_AREA)  # 1.6× the size
    if condition != "none":
        other, _ = apply_condition(other, condition, np.random.default_rng(0))
    score, found = DetailTemplate(query, (300, 100, 364, 144)).locate(other)
    assert box_iou(found, (150, 380, 252, 450)) >= 0.5, found
    if condition != "none":
        return
    # where the detail is not, its best fit is lower
    empty, _ = DetailTemplate(query, (300, 100, 364, 144)).locate(
        cv2.resize(kit.clutter(rng, 240, 320), (800, 600), interpolation=cv2.INTER_LINEAR))
    assert empty < score


def test_the_template_overrules_a_misplaced_box_but_not_a_right_or_much_larger_one(kit):
    rng = np.random.default_rng(7)
    photo = load_image(Path(segswap.__file__).parent / "data" / "box.png")
    query = cv2.resize(kit.clutter(rng, 240, 320), (640, 480), interpolation=cv2.INTER_LINEAR)
    query[100:144, 300:364] = cv2.resize(photo, (64, 44), interpolation=cv2.INTER_AREA)
    other = cv2.resize(kit.clutter(rng, 240, 320), (800, 600), interpolation=cv2.INTER_LINEAR)
    truth = (150, 380, 252, 450)
    other[380:450, 150:252] = cv2.resize(photo, (102, 70), interpolation=cv2.INTER_AREA)
    detail = DetailTemplate(query, (300, 100, 364, 144))
    found = detail.overrule(other, (500, 60, 602, 130))  # the detail's size, on clutter
    assert found is not None and box_iou(found[1], truth) >= 0.5, found
    assert detail.overrule(other, truth) is None
    # a box over five times the template's, even misplaced, is not overruled by a smaller fit
    assert detail.overrule(other, (380, 100, 780, 400)) is None


def test_a_detail_neither_evidence_places_is_boxed_by_its_template(small_detail, matcher, monkeypatch):
    root, index, _, boxes = small_detail
    # no keypoints, and the pair model's region empty, as on a 2×3-cell detail: only the last resort is left
    monkeypatch.setattr("segswap.collection.search.region_box", lambda mask, size: None)
    result = search(index, root / "images" / "02.png", matcher, box=boxes["02.png"], top=4, keypoints=False)
    (copy,) = [hit for hit in result.hits if hit.image.path.name == "06.png"]
    assert all(hit.box_from == "template" for hit in result.hits)
    assert copy.box_from == "template" and box_iou(copy.box, boxes["06.png"]) >= 0.5, (copy.box_from, copy.box)


def test_a_hit_whose_image_no_longer_loads_keeps_the_flow_guess(small_detail, matcher, monkeypatch):
    from segswap.errors import ImageError

    root, index, _, boxes = small_detail
    query = root / "images" / "02.png"
    monkeypatch.setattr("segswap.collection.search.region_box", lambda mask, size: None)

    def only_the_query(path, *args, **kwargs):
        if Path(path) != query:
            raise ImageError(f"{path}: cannot identify image file")
        return load_image(path)

    monkeypatch.setattr("segswap.collection.search.load_image", only_the_query)
    result = search(index, query, matcher, box=boxes["02.png"], top=4, keypoints=False)
    others = [hit for hit in result.hits if hit.image.path != query]  # the query's own image still loads
    assert others and all(hit.box_from == "pair flow" and hit.box is not None for hit in others)
