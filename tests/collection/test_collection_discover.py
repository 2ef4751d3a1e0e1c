from pathlib import Path

import pytest

from segswap.collection.discover import default_clusters, discover
from segswap.collection.update import update_index
from segswap.errors import SegswapError


def inside(box, truth):
    """The fraction of ``box`` that lies inside ``truth``."""
    x0, y0, x1, y1 = box
    tx0, ty0, tx1, ty1 = truth
    inter = max(0, min(x1, tx1) - max(x0, tx0)) * max(0, min(y1, ty1) - max(y0, ty0))
    return inter / ((x1 - x0) * (y1 - y0))


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_repeats_are_grouped_each_into_its_own_cluster(tmp_path, kit, matcher, seed):
    paths, truth = kit.planted_repeats(tmp_path / "images", seed=seed)
    index, _ = update_index(tmp_path / "images", tmp_path / "idx", size=kit.SIZE, show_progress=False)
    found = discover(index, matcher, show_progress=False)
    assert len(found.clusters) >= 2
    owners = {}
    for name, copies in truth.items():
        holders = {path: box for _, path, box in copies}
        best = max(found.clusters, key=lambda c: sum(m.image.path in holders for m in c.images))
        members = {m.image.path: m for m in best.images}
        assert sum(p in members for p in holders) >= 3, name  # most copies in one cluster ...
        others = [p for _, p, _ in truth["B" if name == "A" else "A"]]
        assert not any(p in members for p in others), name  # ... which holds none of the other object
        for path, member in members.items():
            if path in holders:
                assert inside(member.box, holders[path]) > 0.6  # and it points at the object
        owners[name] = id(best)
    assert owners["A"] != owners["B"]


def test_discovery_reports_its_graph_and_checks_options(repeats, matcher):
    index, _ = repeats
    found = discover(index, matcher, top_k=3, clusters=4, show_progress=False)
    assert found.images == 16 and 0 < found.pairs <= 16 * 3 and found.nodes > 0 and found.edges > 0
    strengths = [c.strength for c in found.clusters]
    assert strengths == sorted(strengths, reverse=True)
    assert all(len(c.images) >= 2 for c in found.clusters)
    assert default_clusters(16) == 3 and default_clusters(1000) == 200 and default_clusters(10**5) == 500
    with pytest.raises(SegswapError, match="top-k"):
        discover(index, matcher, top_k=0)


def test_every_stage_of_discover_and_search_reports_progress(repeats, run_cli):
    """Item 12 of issue 21: `discover` was silent before its bar and after it reached 100 %, and `search`
    showed no progress at all."""
    index, truth = repeats
    r = run_cli("discover", "--index", index.path, "--model", "correlation", "--design", "spectral")
    assert r.returncode == 0, r.stderr
    for stage in ("shortlisting neighbours", "pairs", "building the correspondence graph", "leading eigenvectors",
                  "k-means"):
        assert stage in r.stderr, stage
    r = run_cli("discover", "--index", index.path, "--model", "correlation")  # the default design: regions
    assert r.returncode == 0, r.stderr
    for stage in ("shortlisting neighbours", "pair model", "100%", "grouping", "verified regions into patterns"):
        assert stage in r.stderr, stage
    query = truth["A"][0][1]
    r = run_cli("search", query, "--index", index.path, "--model", "correlation")
    assert r.returncode == 0 and "shortlisting" in r.stderr and "re-ranking" in r.stderr and "it/s" not in r.stdout


def _burst(kit, rng, folder, n=3):
    """``n`` frames of one scene, each shifted by a few pixels and re-noised: near-identical photographs."""
    import numpy as np

    scene = kit.clutter(rng, 180, 240)
    frames = []
    for k in range(n):
        shifted = np.roll(scene, (2 * k, 3 * k), axis=(0, 1))
        noisy = np.clip(shifted.astype(int) + rng.integers(-6, 7, shifted.shape), 0, 255).astype(np.uint8)
        frames.append(kit.save(folder / f"burst_{k}.png", noisy))
    return frames


@pytest.fixture(scope="module")
def planted_collection(tmp_path_factory, kit):
    """Two copies of one object in different scenes, a burst of three near-identical frames, and five unrelated
    images; indexed with keypoints."""
    import numpy as np

    from segswap.keypoints import is_installed

    if not is_installed("xfeat"):
        pytest.skip("keypoint wheels not installed")
    root = tmp_path_factory.mktemp("planted_collection")
    rng = np.random.default_rng(11)
    obj, mask = kit.planted_object(4000, 96, "rings")
    copies = []
    for k, (x, y) in enumerate(((20, 30), (120, 70))):
        copies.append(kit.save(root / "images" / f"copy_{k}.png", kit.paste(kit.clutter(rng, 180, 240), obj, mask, x, y)))
    burst = _burst(kit, rng, root / "images")
    plain = [kit.save(root / "images" / f"plain_{k}.png", kit.clutter(rng, 180, 240)) for k in range(5)]
    index, _ = update_index(root / "images", root / "idx", size=kit.SIZE, show_progress=False)
    return index, copies, burst, plain


def test_verified_regions_give_one_pattern_per_repeat_and_fold_a_burst(planted_collection, matcher, monkeypatch):
    from segswap.collection.discover import discovery_json, run_discovery

    index, copies, burst, plain = planted_collection
    # the training-free model has no calibration; the keypoints decide, at an inlier threshold of their range
    monkeypatch.setattr("segswap.collection.regions.calibrated_inlier_threshold", lambda settings: 12.0)
    found = run_discovery(index, matcher, design="regions", show_progress=False)
    repeats = [p for p in found.patterns if p.kind == "repeat"]
    groups = [p for p in found.patterns if p.kind == "near-duplicates"]
    assert len(repeats) == 1 and {m.image.path for m in repeats[0].images} == set(copies)
    assert len(groups) == 1 and len(groups[0].images) == 1  # the burst: one image, the others folded beside it
    member = groups[0].images[0]
    assert {member.image.path, *(n.path for n in member.near_duplicates)} == set(burst)
    assert not any(m.image.path in plain for p in found.patterns for m in p.images)
    # each copy's region is the object's (pasted at (20, 30) and (120, 70), 96 px)
    for m in repeats[0].images:
        x, y = (20, 30) if m.image.path == copies[0] else (120, 70)
        assert inside(m.box, (x - 8, y - 8, x + 104, y + 104)) > 0.8, m.box
    # the same collection gives the same JSON; the count follows the data: a stricter evidence, fewer patterns
    again = run_discovery(index, matcher, design="regions", show_progress=False)
    assert discovery_json(found) == discovery_json(again)
    strict = run_discovery(index, matcher, design="regions", min_evidence=1000.0, show_progress=False)
    assert strict.patterns == [] and strict.edges == 0


class _Images:
    """The index's image records, as group_patterns reads them (path and size)."""

    def image(self, image_id):
        from types import SimpleNamespace

        return SimpleNamespace(id=image_id, path=Path(f"{image_id:02d}.png"), size=(100, 100))


def _edge(a, b, fused, box_a=(0, 0, 100, 100), box_b=(0, 0, 100, 100)):
    import numpy as np

    from segswap.collection.regions import EdgeRegion, VerifiedEdge

    region = lambda box: EdgeRegion(box, np.ones((4, 4), bool))  # noqa: E731
    return VerifiedEdge(a, b, fused, ("pair score",), 0.1, 0, region(box_a), region(box_b))


def test_one_thing_seen_from_many_viewpoints_is_one_pattern():
    from segswap.collection.regions import group_patterns

    # six views of a wall, most pairs verified; image 2 shows the whole wall to some, a strip of it to others
    # (the strip's IoU with the whole is 0.3, all of it inside)
    strip = (40, 0, 70, 100)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (1, 4), (2, 4), (2, 5), (3, 4), (4, 5), (3, 5)]
    edges = [_edge(a, b, 3.0, box_b=strip if b == 2 and a % 2 else (0, 0, 100, 100)) for a, b in pairs]
    (pattern,) = group_patterns(_Images(), edges)
    assert [m.image.id for m in pattern.images] == [0, 1, 2, 3, 4, 5]


def test_two_things_joined_by_a_chance_edge_stay_two_patterns():
    from itertools import combinations

    from segswap.collection.regions import group_patterns

    edges = [_edge(a, b, 5.0) for group in ((0, 1, 2, 3), (4, 5, 6, 7)) for a, b in combinations(group, 2)]
    edges.append(_edge(3, 4, 1.0))  # one weak, chance edge between the two
    patterns = group_patterns(_Images(), edges)
    assert sorted(sorted(m.image.id for m in p.images) for p in patterns) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_box_overlap_is_the_smaller_boxs_share_inside_the_other():
    from segswap.grid import box_iou, box_overlap

    assert box_overlap((0, 0, 100, 100), (40, 0, 70, 100)) == 1.0 and box_iou((0, 0, 100, 100), (40, 0, 70, 100)) == 0.3
    assert box_overlap((0, 0, 10, 10), (5, 0, 15, 10)) == 0.5 and box_overlap((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_overlap((0, 0, 0, 10), (0, 0, 10, 10)) == 0.0


def test_clusters_over_the_same_images_and_regions_are_one_pattern():
    from types import SimpleNamespace

    import numpy as np

    from segswap.collection.discover import Cluster, ClusterImage, merged_clusters

    images = {i: SimpleNamespace(id=i, path=Path(f"{i}.png"), grid=(4, 4), size=(64, 64)) for i in range(3)}

    def cluster(strength, cells):  # cells: image -> (row0, col0, row1, col1) of weight 1
        members = []
        for i, (r0, c0, r1, c1) in cells.items():
            weight = np.zeros((4, 4))
            weight[r0:r1, c0:c1] = 1
            members.append(ClusterImage(images[i], weight, (16 * c0, 16 * r0, 16 * c1, 16 * r1)))
        return Cluster(strength, 5, members)

    wall = cluster(3.0, {0: (0, 0, 2, 4), 1: (0, 0, 2, 4)})
    same_wall = cluster(2.0, {0: (0, 1, 2, 3), 1: (1, 0, 2, 4)})  # inside the first's regions
    elsewhere = cluster(1.5, {0: (3, 0, 4, 4), 1: (3, 0, 4, 4)})  # the same images, another region
    other_images = cluster(1.0, {0: (0, 0, 2, 4), 2: (0, 0, 2, 4)})
    merged = merged_clusters([wall, same_wall, elsewhere, other_images])
    assert [c.strength for c in merged] == [5.0, 1.5, 1.0] and merged[0].nodes == 10
    assert merged[0].images[0].weight.sum() == 8 + 4 and merged[0].images[0].box == (0, 0, 64, 32)


def test_the_default_design_without_calibrated_evidence_is_one_line_naming_the_other_design(tmp_path, kit, run_cli):
    """The regions design (the default) verifies edges by a calibrated pair score or the index's keypoints: the
    training-free model on an index without keypoints has neither, which is said in one line, exit 2, before
    any pair runs; `--design spectral` then runs."""
    kit.planted_repeats(tmp_path / "images", seed=0, copies=2, plain=1)
    update_index(tmp_path / "images", tmp_path / "idx", size=kit.SIZE, keypoints=False, show_progress=False)
    r = run_cli("discover", "--index", tmp_path / "idx", "--model", "correlation")
    assert r.returncode == 2 and "--design spectral" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # no progress bar: nothing ran
    assert run_cli("discover", "--index", tmp_path / "idx", "--model", "correlation", "--design", "spectral").returncode == 0


def test_the_same_photograph_saved_again_is_one_near_duplicate_group_although_its_borders_are_flat(tmp_path, kit, matcher,
                                                                                                  monkeypatch):
    """Rule D5: a photograph whose detail lies in its middle, saved again smaller, has its keypoints' hull well
    short of the frame; nearly every keypoint matching under one homography still makes the two one
    near-duplicate group. Without that criterion the same input gives a repeated pattern."""
    import cv2
    import numpy as np

    from segswap.collection.discover import run_discovery
    from segswap.keypoints import is_installed

    if not is_installed("xfeat"):
        pytest.skip("keypoint wheels not installed")
    rng = np.random.default_rng(5)
    photo = np.full((180, 240, 3), 128, np.uint8)
    photo[45:135, 60:180] = kit.clutter(rng, 90, 120)  # the middle quarter holds every keypoint
    original = kit.save(tmp_path / "images" / "photo.png", photo)
    again = kit.save(tmp_path / "images" / "photo_again.png", cv2.resize(photo, None, fx=0.9, fy=0.9,
                                                                          interpolation=cv2.INTER_AREA))
    for k in range(4):
        kit.save(tmp_path / "images" / f"plain_{k}.png", kit.clutter(rng, 180, 240))
    index, _ = update_index(tmp_path / "images", tmp_path / "idx", size=kit.SIZE, show_progress=False)
    monkeypatch.setattr("segswap.collection.regions.calibrated_inlier_threshold", lambda settings: 12.0)
    found = run_discovery(index, matcher, show_progress=False)
    groups = [p for p in found.patterns if p.kind == "near-duplicates"]
    assert len(groups) == 1 and len(groups[0].images) == 1
    member = groups[0].images[0]
    assert {member.image.path, *(n.path for n in member.near_duplicates)} == {original, again}
    assert all(m.box[2] - m.box[0] < 0.9 * 240 for m in groups[0].images)  # the region is not the whole frame
    monkeypatch.setattr("segswap.collection.regions.SAME_PHOTOGRAPH_INLIERS", 2.0)  # the area criterion alone
    alone = run_discovery(index, matcher, show_progress=False)
    assert [p.kind for p in alone.patterns] == ["repeat"]
