"""Results of an index made from a IIIF manifest keep their provenance (search, discover, cosegment --index,
the viewer), and `--annotations` writes a Web Annotation page a IIIF viewer loads: validated here by
iiif-prezi3's models, which are generated from the IIIF Presentation 3 JSON Schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from segswap.iiif.http import Fetcher
from segswap.iiif.index import index_manifest

SIZE = 224
#: Where the detail lies in image 0 (fetched-file pixels) and where it is pasted in image 1.
DETAIL = (40, 40, 200, 170)
PASTED_AT = (120, 60)


def pictures() -> list[np.ndarray]:
    """Three 320×240 pictures; the detail of the first is pasted into the second."""
    out = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        image = cv2.resize(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8), (320, 240), interpolation=cv2.INTER_CUBIC)
        for _ in range(25):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x, y = int(rng.integers(0, 320)), int(rng.integers(0, 240))
            cv2.circle(image, (x, y), int(rng.integers(4, 30)), colour, -1)
        out.append(image)
    x0, y0, x1, y1 = DETAIL
    px, py = PASTED_AT
    out[1][py:py + y1 - y0, px:px + x1 - x0] = out[0][y0:y1, x0:x1]
    return out


@pytest.fixture
def manifest_index(iiif_server, iiif_kit, tmp_path):
    services = [iiif_kit.level0_service(iiif_server, f"img{k}", rgb) for k, rgb in enumerate(pictures())]
    manifest = iiif_kit.manifest_v3(iiif_server, "ms", services)
    index, _, _ = index_manifest(manifest, tmp_path / "idx", size=SIZE, keypoints=False, show_progress=False,
                                 fetcher=Fetcher(backoff=0.01))
    return index, iiif_server


def validated(page: dict):
    """The page loaded through iiif-prezi3's AnnotationPage model (the IIIF Presentation 3 schema's classes)."""
    from iiif_prezi3 import AnnotationPage

    assert page["@context"] == "http://iiif.io/api/presentation/3/context.json" and page["type"] == "AnnotationPage"
    return AnnotationPage.model_validate(page)


def test_search_names_the_canvas_and_writes_an_annotation_page(manifest_index, run_cli, tmp_path):
    index, server = manifest_index
    query = next(im for im in index.images() if im.canvas.label == "f. 1r")
    annotations, results = tmp_path / "search.json", tmp_path / "hits.json"
    done = run_cli("search", query.path, "--index", index.path, "--box", ",".join(map(str, DETAIL)), "--top", 3,
                   "--annotations", annotations, "--json", results, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"canvas 'f. 2r' of 'A manuscript' {server.url('ms/canvas/2')}#xywh=" in done.stdout
    hits = json.loads(results.read_text())
    assert all(hit["canvas"]["manifest"] == server.url("ms.json") for hit in hits)
    page = json.loads(annotations.read_text())
    validated(page)
    # The query's detail, on its own canvas: twice its box in the fetched file's pixels.
    x0, y0, x1, y1 = DETAIL
    assert page["items"][0]["target"] == f"{server.url('ms/canvas/1')}#xywh={2 * x0},{2 * y0},{2 * (x1 - x0)},{2 * (y1 - y0)}"
    results_annotations = page["items"][1:]
    assert [a["target"] for a in results_annotations] == [hit["canvas"]["target"] for hit in hits]
    for annotation, hit in zip(results_annotations, hits):
        text, tag = annotation["body"]
        assert tag["purpose"] == "tagging" and tag["value"] == {True: "match", False: "no match", None: "ranked"}[hit["match"]]
        assert f"score {hit['score']:.3f}" in text["value"] and annotation["motivation"] == "commenting"
    # The pasted copy is found where it was pasted, in canvas coordinates.
    copy = next(hit for hit in hits if hit["canvas"]["label"] == "f. 2r")
    cx, cy, cw, ch = copy["canvas"]["xywh"]
    px, py = PASTED_AT
    assert abs(cx + cw / 2 - 2 * (px + (x1 - x0) / 2)) < 64 and abs(cy + ch / 2 - 2 * (py + (y1 - y0) / 2)) < 64


def test_a_discovered_pattern_links_its_regions_in_one_annotation(manifest_index, tmp_path):
    from segswap.collection.discover import Cluster, ClusterImage, Discovery
    from segswap.iiif.annotations import discovery_page

    index, server = manifest_index
    images = sorted(index.images(), key=lambda im: im.canvas.position)
    members = [ClusterImage(images[0], np.ones(images[0].grid), DETAIL),
               ClusterImage(images[1], np.ones(images[1].grid), (120, 60, 280, 190))]
    page, left_out = discovery_page(Discovery([Cluster(12.5, 40, members)], 3, 4, 40, 80), tmp_path / "found.json")
    validated(page)
    assert left_out == 0
    regions, link = page["items"][:2], page["items"][2]
    assert [a["motivation"] for a in page["items"]] == ["commenting", "commenting", "linking"]
    assert link["target"] == [a["target"] for a in regions] == [
        f"{server.url('ms/canvas/1')}#xywh=80,80,320,260", f"{server.url('ms/canvas/2')}#xywh=240,120,320,260"]
    assert "pattern 1 of 1" in link["body"][0]["value"] and link["body"][1]["value"] == "pattern 1"


def test_discover_writes_its_page_and_names_canvases(manifest_index, run_cli, tmp_path):
    index, server = manifest_index
    annotations, found = tmp_path / "discover.json", tmp_path / "found.json"
    done = run_cli("discover", "--index", index.path, "--top-k", 2, "--annotations", annotations, "--json", found,
                   timeout=600)
    assert done.returncode == 0, done.stderr
    validated(json.loads(annotations.read_text()))
    for pattern in json.loads(found.read_text())["patterns"]:
        for member in pattern["images"]:
            assert member["canvas"]["target"].startswith(server.url("ms/canvas/"))


def test_annotations_of_a_folder_index_are_refused_before_the_model_loads(tmp_path, run_cli):
    from segswap.collection.update import update_index

    folder = tmp_path / "photos"
    folder.mkdir()
    for k, rgb in enumerate(pictures()[:2]):
        cv2.imwrite(str(folder / f"{k}.jpg"), rgb)
    update_index(folder, tmp_path / "idx", size=SIZE, keypoints=False, show_progress=False)
    done = run_cli("search", folder / "0.jpg", "--index", tmp_path / "idx", "--annotations", tmp_path / "a.json", timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "no IIIF canvas" in done.stderr
    assert not (tmp_path / "a.json").exists()


def test_cosegment_with_the_index_names_each_canvas(manifest_index, tmp_path):
    import segswap
    from segswap.collection.cosegment import cosegment_folder
    from segswap.collection.update import default_index_backbone

    index, server = manifest_index
    matcher = segswap.load("correlation", size=SIZE, backbone=default_index_backbone())
    cosegment_folder(index.root, tmp_path / "masks", matcher, show_progress=False, method="segswap", index=index.path)
    record = json.loads((tmp_path / "masks" / "cosegment.json").read_text())
    (group,) = record["groups"].values()
    assert sorted(c["label"] for c in group["canvases"]) == ["f. 1r", "f. 2r", "f. 3r"]
    for canvas in group["canvases"]:
        assert canvas["canvas_width"] == 640 and canvas["manifest_label"] == "A manuscript"
        if canvas["xywh"] is not None:
            x, y, w, h = canvas["xywh"]
            assert 0 <= x and x + w <= 640 and 0 <= y and y + h <= 480


def test_the_viewer_lists_canvases_in_manifest_order(manifest_index):
    from fastapi.testclient import TestClient

    from segswap.serve.app import create_app
    from segswap.serve.settings import ViewerSettings
    from segswap.serve.viewer import Viewer

    index, server = manifest_index
    with TestClient(create_app(Viewer(ViewerSettings(index=index.path)))) as client:
        listed = client.get("/api/images").json()["images"]
        assert [image["canvas"]["label"] for image in listed] == ["f. 1r", "f. 2r", "f. 3r"]
        one = client.get(f"/api/images/{listed[1]['id']}").json()
        assert one["canvas"]["canvas"] == server.url("ms/canvas/2") and one["canvas"]["manifest"] == server.url("ms.json")


LOADER = Path(__file__).parent / "loader"


def viewer_load(page_file: Path) -> dict:
    """The page as a IIIF viewer built on IIIF Commons' parser (Clover, Universal Viewer 4's vault) loads it:
    normalised into the entity store, each target expanded into a canvas and a box (tests/iiif/loader;
    `make test` installs it: it is not optional)."""
    assert shutil.which("node") and (LOADER / "node_modules" / "@iiif" / "parser").is_dir(), \
        "the viewer loader is not installed: make iiif-loader"
    done = subprocess.run(["node", str(LOADER / "load.mjs"), str(page_file)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_iiif_viewers_loader_reads_the_canvas_regions(manifest_index, tmp_path):
    import segswap
    from segswap.collection.discover import Cluster, ClusterImage, Discovery
    from segswap.collection.search import search
    from segswap.collection.update import default_index_backbone
    from segswap.iiif.annotations import discovery_page, search_page, write_page

    index, server = manifest_index
    matcher = segswap.load("correlation", size=SIZE, backbone=default_index_backbone())
    query = next(im for im in index.images() if im.canvas.label == "f. 1r")
    result = search(index, query.path, matcher, box=DETAIL, top=3, keypoints=False)
    page, _ = search_page(result, tmp_path / "search.json", query.canvas, query.size)
    write_page(tmp_path / "search.json", page)
    loaded = viewer_load(tmp_path / "search.json")
    assert loaded["type"] == "AnnotationPage" and len(loaded["annotations"]) == len(page["items"]) == 1 + len(result.hits)
    expected = [(query.canvas.canvas, query.canvas.to_canvas(DETAIL, query.size))]
    expected += [(hit.image.canvas.canvas, hit.image.canvas.to_canvas(hit.box, hit.image.size)) for hit in result.hits]
    for annotation, (canvas, (x, y, w, h)) in zip(loaded["annotations"], expected):
        (target,) = annotation["targets"]
        assert (target["source"], target["sourceType"], target["selector"]["type"]) == (canvas, "Canvas", "BoxSelector")
        assert target["selector"]["spatial"] == {"unit": "pixel", "x": x, "y": y, "width": w, "height": h}
        assert [b["purpose"] for b in annotation["bodies"]] == ["commenting", "tagging"]

    images = sorted(index.images(), key=lambda im: im.canvas.position)
    members = [ClusterImage(images[0], np.ones(images[0].grid), DETAIL), ClusterImage(images[1], np.ones(images[1].grid), DETAIL)]
    page, _ = discovery_page(Discovery([Cluster(3.0, 10, members)], 3, 3, 10, 20), tmp_path / "found.json")
    write_page(tmp_path / "found.json", page)
    loaded = viewer_load(tmp_path / "found.json")
    regions = [a["targets"][0]["selector"]["spatial"] for a in loaded["annotations"][:2]]
    assert regions == [{"unit": "pixel", "x": 80, "y": 80, "width": 320, "height": 260}] * 2
    # This loader keeps the first target of a multi-target annotation only: the linking annotation shows on
    # the first region, which is why every region also has an annotation of its own.
    assert loaded["annotations"][2]["motivation"] == ["linking"]
    assert loaded["annotations"][2]["targets"][0]["source"] == server.url("ms/canvas/1")
