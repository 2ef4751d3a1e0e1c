"""Speed of `segswap serve`: a box query answered in the page on a 1,000-image index, and the collection
page of a 10,000-image index once its thumbnails are cached.

    .venv/bin/python benchmarks/serve_speed.py [--queries 3] [--workdir DIR]

The indexes are built as in ``search_speed.py``: the shared COCO-128 and photo images (164, about
640×480) are indexed for real at 480 px, then entries with those images' features plus noise are
written until the index holds 1,000 (and 10,000) images; here each synthetic entry's file is a hard
link to its source, so every entry has a real file to show (100 entries to a folder). The viewer runs in this process (uvicorn
in a thread, as `segswap serve` runs it) and is reached over loopback HTTP.

* Query: the central third of a real image, POSTed to /api/search, the job polled every 50 ms until
  its result is there — what the page does. Reference: ``search()`` called directly on the same index
  and model in the same run, so the ratio is the viewer's own overhead (HTTP, background job, JSON).
  The first query also loads the model; it is reported apart. Target ≤ 5 s on 2 cores.
* Collection page: headless chromium (Debian's, through chromedriver) opens /collection and the clock
  stops when the grid is built and every thumbnail in the window has loaded; thumbnails were cached
  by a first visit. The synthetic entries lie 100 to a folder, as an archive's boxes would. Also timed:
  the two API answers the page waits for (/api/info with the folder list, the first /api/images page).
  Reference: the same on the 164-image real index, same run, so the ratio is what 10,000 images cost
  over 164. Target ≤ 1 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_image_folder_arguments, add_json_argument, print_machine, print_table, run_and_record  # noqa: E402
from search_speed import real_index, synthetic_index  # noqa: E402

from segswap.collection.index import CollectionIndex  # noqa: E402
from segswap.collection.search import search  # noqa: E402
from segswap.serve.app import create_app  # noqa: E402
from segswap.serve import ViewerSettings  # noqa: E402
from segswap.serve.viewer import SHORTLIST, Viewer  # noqa: E402

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,900")


class Served:
    """A viewer of ``index`` served by uvicorn in a thread on a free loopback port."""

    def __init__(self, index: Path):
        import uvicorn

        from segswap.serve.server import listen

        self.viewer = Viewer(ViewerSettings(index))
        self.socket = listen("127.0.0.1", 0)
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.viewer), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get(self, path: str, method: str = "GET", body: dict | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        assert response.status == 200, (path, response.status, data[:200])
        return data

    def close(self):
        self.connection.close()
        self.server.should_exit = True
        self.thread.join(timeout=60)


def query_in_page(served: Served, image_id: int, box) -> float:
    """Seconds from the page's POST to the job's result arriving, polling as the page does."""
    start = time.perf_counter()
    job = json.loads(served.get("/api/search", "POST", {"image": image_id, "box": list(box), "top": 12}))
    while job["state"] in ("queued", "running"):
        time.sleep(0.05)
        job = json.loads(served.get(f"/api/jobs/{job['id']}"))
    assert job["state"] == "done", job
    return time.perf_counter() - start


def first_page_api(served: Served) -> float:
    """Seconds for the two API answers the collection page waits for: /api/info (with the folder list)
    and the first page of /api/images — the part of the page whose cost grows with the collection."""
    start = time.perf_counter()
    served.get("/api/info")
    served.get("/api/images?offset=0&limit=100")
    return time.perf_counter() - start


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='segswap-bench-chromium-')}")
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


PAGE_SHOWN = """return document.body.dataset.ready === '1' && [...document.querySelectorAll('#grid img')]
  .filter(i => i.getBoundingClientRect().top < innerHeight).every(i => i.complete && i.naturalWidth > 0)"""


def page_in_browser(driver, served: Served) -> float:
    """Seconds from asking for /collection to the grid shown with every visible thumbnail loaded."""
    driver.get("about:blank")
    start = time.perf_counter()
    driver.get(f"http://127.0.0.1:{served.port}/collection")
    while not driver.execute_script(PAGE_SHOWN):
        time.sleep(0.005)
    return time.perf_counter() - start


def with_files(index: CollectionIndex, origin: dict[int, Path]) -> None:
    """Give each synthetic entry a file: a hard link to the real image it derives from."""
    for image in index.images():
        if not image.path.exists():
            image.path.parent.mkdir(parents=True, exist_ok=True)
            os.link(origin[image.id], image.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_image_folder_arguments(parser)
    parser.add_argument("--query-index", type=int, default=1_000, help="images in the index searched")
    parser.add_argument("--page-index", type=int, default=10_000, help="images in the index whose page is loaded")
    parser.add_argument("--queries", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="collection page loads timed (median)")
    add_json_argument(parser)
    args = parser.parse_args()
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        # The synthetic entries' files lie in the real images' folder (the indexes share their root): the
        # links of an earlier run go first, or indexing the real images would take them in.
        shutil.rmtree(work / "images" / "synthetic", ignore_errors=True)
        real = real_index(work, args.images, 480)
        indexes = {}
        for count in (args.query_index, args.page_index):
            start = time.perf_counter()
            index, origin = synthetic_index(real, work / f"synthetic{count}", count, per_folder=100)
            with_files(index, origin)
            indexes[count] = index
            print(f"synthetic index of {len(index)} images written in {time.perf_counter() - start:.0f} s")

        # -- query on 1,000 images ---------------------------------------------------------------------
        served = Served(indexes[args.query_index].path)
        queries = []
        for image in real.images()[:: max(1, len(real) // args.queries)][: args.queries]:
            w, h = image.size
            queries.append((image.id, image.path, (w // 3, h // 3, 2 * w // 3, 2 * h // 3)))
        first = query_in_page(served, queries[0][0], queries[0][2])  # also loads the model
        in_page = [query_in_page(served, image_id, box) for image_id, _, box in queries]
        matcher = served.viewer.matcher()
        direct = []
        for _, path, box in queries:
            start = time.perf_counter()
            search(indexes[args.query_index], path, matcher, box=box, top=12, shortlist=SHORTLIST)
            direct.append(time.perf_counter() - start)
        served.close()
        mine, reference = statistics.median(in_page), statistics.median(direct)
        print(f"\nbox query on a {args.query_index:,}-image index, shortlist {SHORTLIST}, model {matcher.name}, median of {len(queries)}\n")
        print_table(["", "seconds"], [["first query in the page (loads the model)", f"{first:.2f}"],
                                       ["query answered in the page", f"{mine:.2f}"],
                                       ["reference: search() called directly", f"{reference:.2f}"],
                                       ["viewer / direct", f"{mine / reference:.2f}×"]])

        # -- collection page of 10,000 images ----------------------------------------------------------
        driver = browser()
        rows = []
        for label, path in ((f"{args.page_index:,}-image index", indexes[args.page_index].path), (f"reference: the {len(real)} real images", real.path)):
            served = Served(path)
            page_in_browser(driver, served)  # makes and caches the first page's thumbnails
            api = statistics.median(first_page_api(served) for _ in range(args.repeats))
            shown = statistics.median(page_in_browser(driver, served) for _ in range(args.repeats))
            rows.append([label, len(served.viewer.catalog), len(served.viewer.catalog.folders()), f"{shown:.3f}", f"{api:.3f}"])
            served.close()
        driver.quit()
        rows.append([f"{args.page_index:,} / reference", "", "", f"{float(rows[0][3]) / float(rows[1][3]):.2f}×",
                     f"{float(rows[0][4]) / float(rows[1][4]):.2f}×"])
        print(f"\ncollection page, thumbnails cached, median of {args.repeats}\n")
        print_table(["index", "images", "folders", "page shown in chromium (s)", "its two API answers (s)"], rows)


if __name__ == "__main__":
    run_and_record(main)
