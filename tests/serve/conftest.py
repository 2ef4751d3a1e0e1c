"""The viewer under test: a small index of MSRC images (three groups of four, built once per session),
their co-segmentation, a real server on a free loopback port, and headless Debian chromium.

The browser is not optional: without /usr/bin/chromium and /usr/bin/chromedriver (`make test` installs
them) the browser tests fail. Without the shared data they skip, like the project's other tests on it.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MSRC = SHARED / "eval" / "msrc_coseg" / "images"
GROUPS = ("cow", "face", "plane")
PER_GROUP = 4
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,900")
#: Set to copy one screenshot of each page into docs/viewer/ (how the docs' pictures are made).
DOCS_SCREENSHOTS = os.environ.get("SEGSWAP_DOCS_SCREENSHOTS") == "1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "viewer"


@pytest.fixture(scope="session")
def viewer_data(tmp_path_factory):
    """An index of 12 MSRC images (cow, face, plane) and `segswap cosegment`'s output over them."""
    if not MSRC.is_dir():
        pytest.skip("shared data not present")
    import segswap
    from segswap.collection.cosegment import cosegment_folder
    from segswap.collection.update import update_index

    root = tmp_path_factory.mktemp("viewer")
    collection = root / "collection"
    for group in GROUPS:
        (collection / group).mkdir(parents=True)
        for image in sorted((MSRC / group).glob("*.png"))[:PER_GROUP]:
            shutil.copy(image, collection / group / image.name)
    update_index(collection, root / "index", show_progress=False)
    matcher = segswap.load()
    cosegment_folder(collection, root / "masks", matcher, show_progress=False, method="segswap")
    return {"collection": collection, "index": root / "index", "masks": root / "masks"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def server(viewer_data):
    """The viewer of ``viewer_data`` served by uvicorn in a thread: its base URL and the Viewer."""
    import uvicorn

    from segswap.serve.app import create_app
    from segswap.serve import ViewerSettings
    from segswap.serve.viewer import Viewer

    viewer = Viewer(ViewerSettings(viewer_data["index"], cosegment=viewer_data["masks"]))
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(create_app(viewer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "viewer": viewer, **viewer_data}
    uv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless chromium driven by its chromedriver; fails (no skip) when they are not installed."""
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "chromium and chromium-driver are needed for the viewer's browser tests: `make test` installs them "
        "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory):
    """``screenshot(driver, name)`` saves the page to a temporary folder (and, with
    SEGSWAP_DOCS_SCREENSHOTS=1, a small palette PNG of it to docs/viewer/); returns the path."""
    folder = tmp_path_factory.mktemp("screenshots")

    def take(driver, name: str) -> Path:
        path = folder / f"{name}.png"
        assert driver.save_screenshot(str(path))
        if DOCS_SCREENSHOTS:
            from PIL import Image

            DOCS.mkdir(parents=True, exist_ok=True)
            Image.open(path).convert("RGB").quantize(colors=128).save(DOCS / f"{name}.png", optimize=True)
        return path

    return take
