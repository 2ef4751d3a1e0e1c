"""`segswap index MANIFEST`: a real local IIIF setup (static level-0 Image API services and Presentation 2.1
and 3.0 manifests served over loopback, tests/iiif/conftest.py), a server that fails requests, a missing
image, malformed manifests, an update, and a run killed midway."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest

from segswap.iiif.http import Fetcher
from segswap.iiif.index import index_manifest

SIZE = 224  # the index's feature size: small grids keep the tests fast


def picture(seed: int, w: int = 320, h: int = 240) -> np.ndarray:
    """Smooth colour noise under a few shapes: something the backbone and keypoints can hold on to."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (h // 20, w // 20, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(image, (x, y), (x + int(rng.integers(10, 60)), y + int(rng.integers(10, 60))), colour, -1)
    return image


def site(server, kit, n_v3: int = 2, n_v2: int = 1):
    """A collection of a v3 manifest (n_v3 canvases) and a v2 one (n_v2); returns (collection URL, services)."""
    services = [kit.level0_service(server, f"img{k}", picture(k), version=3) for k in range(n_v3)]
    services += [kit.level0_service(server, f"old{k}", picture(100 + k), version=2) for k in range(n_v2)]
    m3 = kit.manifest_v3(server, "ms", services[:n_v3])
    m2 = kit.manifest_v2(server, "album", services[n_v3:])
    return kit.collection_v3(server, "collection", [m3, m2]), services


def quick(**kwargs) -> Fetcher:
    """The real fetcher with short waits between tries (the default backoff starts at 0.5 s)."""
    return Fetcher(backoff=0.01, **kwargs)


def image_requests(server) -> list[str]:
    return [p for p in server.faults.log if p.endswith(".jpg")]


def test_a_collection_of_v3_and_v2_manifests_is_indexed_with_its_canvases(iiif_server, iiif_kit, tmp_path):
    collection, services = site(iiif_server, iiif_kit)
    index, summary, fetched = index_manifest(collection, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    assert (summary.added, fetched.fetched, fetched.failed, fetched.missing) == (3, 3, [], [])
    # Only the sizes the services list, the largest (no listed size reaches 1024 px): never the full image.
    asked = image_requests(iiif_server)
    assert sorted(asked) == ["/iiif/img0/full/320,240/0/default.jpg", "/iiif/img1/full/320,240/0/default.jpg",
                             "/iiif/old0/full/320,/0/default.jpg"]
    images = index.images()
    assert all(im.path.is_relative_to(tmp_path / "idx" / "iiif-cache") for im in images)
    by_label = {im.canvas.label: im for im in images}
    assert set(by_label) == {"f. 1r", "f. 2r", "plate 1"}
    folio = by_label["f. 2r"]
    assert folio.canvas.canvas == iiif_server.url("ms/canvas/2")
    assert folio.canvas.manifest == iiif_server.url("ms.json") and folio.canvas.manifest_label == "A manuscript"
    assert folio.size == (320, 240) and folio.canvas.canvas_size == (640, 480)
    # A box in the fetched file's pixels is twice as large in the canvas's coordinates.
    assert folio.canvas.to_canvas((10, 20, 110, 70), folio.size) == (20, 40, 200, 100)
    assert folio.canvas.target((10, 20, 110, 70), folio.size) == iiif_server.url("ms/canvas/2") + "#xywh=20,40,200,100"
    assert by_label["plate 1"].canvas.manifest_label == "An album"

    # Indexing again reads the manifests and fetches nothing.
    iiif_server.faults.log.clear()
    index, summary, fetched = index_manifest(collection, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    assert image_requests(iiif_server) == [] and not any(p.endswith("info.json") for p in iiif_server.faults.log)
    assert (fetched.fetched, fetched.cached, summary.unchanged, len(index)) == (0, 3, 3, 3)


def test_an_update_fetches_only_the_canvases_that_changed(iiif_server, iiif_kit, tmp_path):
    services = [iiif_kit.level0_service(iiif_server, f"img{k}", picture(k)) for k in range(3)]
    manifest = iiif_kit.manifest_v3(iiif_server, "ms", services[:2])
    index_manifest(manifest, tmp_path / "idx", size=SIZE, keypoints=False, show_progress=False, fetcher=quick())
    iiif_kit.manifest_v3(iiif_server, "ms", [services[0], services[2]])  # canvas 2 now paints img2
    iiif_server.faults.log.clear()
    index, summary, fetched = index_manifest(manifest, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    assert image_requests(iiif_server) == ["/iiif/img2/full/320,240/0/default.jpg"]
    assert (fetched.fetched, fetched.cached, fetched.removed) == (1, 1, 1)
    assert (summary.added, summary.removed, summary.unchanged) == (1, 1, 1)
    assert sorted(im.canvas.image for im in index.images()) == [services[0]["id"], services[2]["id"]]
    assert len(list((tmp_path / "idx" / "iiif-cache").rglob("*.jpg"))) == 2


def test_server_errors_are_retried_with_backoff(iiif_server, iiif_kit, tmp_path):
    collection, _ = site(iiif_server, iiif_kit)
    faults = iiif_server.faults
    faults.times["/iiif/img0/info.json"] = (503, 2)
    faults.times["/iiif/img1/full/320,240/0/default.jpg"] = (500, 3)
    faults.times["/ms.json"] = (502, 1)
    index, summary, fetched = index_manifest(collection, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    assert (len(index), fetched.failed) == (3, [])
    assert fetched.retries == 6
    assert faults.asked("/iiif/img1/full/320,240/0/default.jpg") == 4  # three failures, then the file


def test_a_server_that_keeps_failing_is_one_line_per_canvas_and_the_rest_is_indexed(iiif_server, iiif_kit, tmp_path,
                                                                                   capsys):
    collection, _ = site(iiif_server, iiif_kit)
    failing = "/iiif/img1/full/320,240/0/default.jpg"
    iiif_server.faults.always[failing] = 500
    index, summary, fetched = index_manifest(collection, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1
    assert "f. 2r" in warnings[0] and failing in warnings[0] and "500" in warnings[0] and "after 4 tries" in warnings[0]
    assert len(index) == 2 and fetched.failed == [iiif_server.url("ms/canvas/2")]
    assert "run the command again" in fetched.line()
    assert iiif_server.faults.asked(failing) == 4

    del iiif_server.faults.always[failing]  # the server is back: the next run fetches that canvas alone
    iiif_server.faults.log.clear()
    index, summary, fetched = index_manifest(collection, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    assert image_requests(iiif_server) == [failing] and len(index) == 3


def test_a_manifest_the_server_fails_is_one_line_and_exit_2(iiif_server, iiif_kit, tmp_path, run_cli):
    services = [iiif_kit.level0_service(iiif_server, "img0", picture(0))]
    manifest = iiif_kit.manifest_v3(iiif_server, "ms", services)
    iiif_server.faults.always["/ms.json"] = 503
    done = run_cli("index", manifest, "--index", tmp_path / "idx", timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "503" in lines[0] and "after 4 tries" in lines[0] and manifest in lines[0]
    assert not (tmp_path / "idx").exists()


def test_a_canvas_whose_image_is_missing_is_skipped_with_a_warning(iiif_server, iiif_kit, tmp_path, capsys):
    services = [iiif_kit.level0_service(iiif_server, f"img{k}", picture(k)) for k in range(2)]
    services.append({"id": iiif_server.url("iiif/gone"), "width": 640, "height": 480, "version": 3})  # no files
    manifest = iiif_kit.manifest_v3(iiif_server, "ms", services)
    index, summary, fetched = index_manifest(manifest, tmp_path / "idx", size=SIZE, keypoints=False,
                                             show_progress=False, fetcher=quick())
    assert len(index) == 2 and fetched.missing == [iiif_server.url("ms/canvas/3")]
    err = capsys.readouterr().err
    assert "no image for canvas 'f. 3r'" in err and "404" in err
    assert iiif_server.faults.asked("/iiif/gone/info.json") == 1  # a 404 is not retried


@pytest.mark.parametrize("case", ["not json", "no width", "a sequence", "no context"])
def test_a_malformed_manifest_is_one_line_exit_2_and_nothing_indexed(tmp_path, run_cli, case):
    canvas = {"id": "https://example.org/c1", "type": "Canvas", "width": 100, "height": 100, "items": []}
    documents = {
        "not json": "{\"id\": \"https://example.org/m\", \"type\": \"Manifest\",",
        "no width": json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json", "id": "https://example.org/m",
                                "type": "Manifest", "items": [{**canvas, "width": None}]}),
        "a sequence": json.dumps({"@context": "http://iiif.io/api/presentation/2/context.json",
                                  "@id": "https://example.org/s", "@type": "sc:Sequence", "canvases": []}),
        "no context": json.dumps({"id": "https://example.org/m", "type": "Manifest", "items": [canvas]}),
    }
    manifest = tmp_path / "manifest.json"
    manifest.write_text(documents[case])
    done = run_cli("index", manifest, "--index", tmp_path / "idx", timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and str(manifest) in done.stderr, done.stderr
    assert not (tmp_path / "idx").exists()


def test_another_source_into_the_same_index_is_refused(iiif_server, iiif_kit, tmp_path, run_cli):
    services = [iiif_kit.level0_service(iiif_server, "img0", picture(0))]
    first = iiif_kit.manifest_v3(iiif_server, "ms", services)
    second = iiif_kit.manifest_v3(iiif_server, "other", services)
    index_manifest(first, tmp_path / "idx", size=SIZE, keypoints=False, show_progress=False, fetcher=quick())
    done = run_cli("index", second, "--index", tmp_path / "idx", timeout=60)
    assert done.returncode == 2 and "follows" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_killed_run_resumes_without_fetching_again_what_it_has(iiif_server, iiif_kit, tmp_path, run_cli):
    services = [iiif_kit.level0_service(iiif_server, f"img{k}", picture(k)) for k in range(8)]
    manifest = iiif_kit.manifest_v3(iiif_server, "ms", services)
    faults = iiif_server.faults
    faults.delay = 0.4  # per image: time to kill the run midway
    cache = tmp_path / "idx" / "iiif-cache"
    process = subprocess.Popen(run_cli.command("index", manifest, "--index", tmp_path / "idx", "--size", SIZE,
                                               "--no-keypoints", "--parallel", "1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(cache.rglob("*.jpg"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    kept = len(list(cache.rglob("*.jpg")))
    assert 3 <= kept < 8, "the run was not killed midway"
    faults.delay = 0
    faults.log.clear()
    done = run_cli("index", manifest, "--index", tmp_path / "idx", "--size", SIZE, "--no-keypoints", timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{8 - kept} canvases fetched" in done.stdout and f"{kept} already cached" in done.stdout
    assert len(image_requests(iiif_server)) == 8 - kept  # none of the files it had is asked for again
    assert not list(cache.rglob(".*.tmp"))  # nor is a half-written one left
    assert "8 images" in done.stdout
