import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from segswap.collection.update import update_index
from segswap.viz.html import Row, Tile, render_report

VOID = {"meta", "img", "br", "hr", "link", "input"}


class Checker(HTMLParser):
    """Checks nesting and collects every referenced resource."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.references, self.images = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.references.append(attrs[key])
        if tag == "img":
            self.images += 1
            if not attrs.get("alt"):
                self.errors.append("img without alt")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unbalanced </{tag}>")


def check_report(path: Path) -> Checker:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    for ref in checker.references:
        if ref.startswith("data:image/jpeg;base64,"):
            picture = cv2.imdecode(np.frombuffer(base64.b64decode(ref.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
            assert picture is not None and picture.shape[0] > 0
        else:
            assert (path.parent / ref).exists(), ref  # only files that exist, relative to the report
    return checker


@pytest.fixture(scope="module")
def collection(tmp_path_factory, kit):
    root = tmp_path_factory.mktemp("reports")
    kit.planted_repeats(root / "images", seed=1)
    update_index(root / "images", root / "idx", size=kit.SIZE, show_progress=False)[0].close()
    return root


def test_search_report(collection, tmp_path, invoke_cli):
    report = tmp_path / "search.html"
    result = invoke_cli("search", collection / "images" / "img03.png", "--index", collection / "idx", "--top", "4",
                     "--box", "20,20,120,100", "--report", report, "--model", "correlation")
    assert result.exit_code == 0, result.output
    assert check_report(report).images == 1 + 4


def test_a_search_report_on_an_extreme_strip_keeps_its_thumbnails_within_budget(collection, tmp_path, invoke_cli):
    """Item 1 of issue 36: a 60000×16 query image ended `search --report` in a traceback ("could not encode
    a thumbnail": drawn 160 px high, it was 600,000 px wide, past JPEG's 65,535)."""
    strip = np.zeros((16, 60000, 3), np.uint8)
    strip[:, ::64] = 255
    cv2.imwrite(str(tmp_path / "strip.png"), strip)
    report = tmp_path / "search.html"
    result = invoke_cli("search", tmp_path / "strip.png", "--index", collection / "idx", "--top", "2", "--report", report,
                        "--model", "correlation")
    assert result.exit_code == 0, result.output
    assert check_report(report).images == 1 + 2
    from segswap.viz.html import THUMB_HEIGHT
    from segswap.viz.overlay import MAX_ASPECT

    for encoded in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', report.read_text()):
        picture = cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[0] <= THUMB_HEIGHT and picture.shape[1] <= MAX_ASPECT * THUMB_HEIGHT


def test_discover_report(collection, tmp_path, invoke_cli):
    report, listing = tmp_path / "discover.html", tmp_path / "discover.json"
    result = invoke_cli("discover", "--index", collection / "idx", "--report", report, "--json", listing, "--model", "correlation")
    assert result.exit_code == 0, result.output
    assert check_report(report).images >= 4
    assert "Pattern 1" in report.read_text()


def test_cosegment_report(collection, tmp_path, kit, invoke_cli):
    kit.planted_group(tmp_path / "group", 4, seed=2)
    report = tmp_path / "cosegment.html"
    result = invoke_cli("cosegment", tmp_path / "group", "--out", tmp_path / "masks", "--report", report,
                     "--model", "correlation", "--size", kit.SIZE)
    assert result.exit_code == 0, result.output
    assert check_report(report).images == 4


def test_text_is_escaped():
    html = render_report("<b>&", [Row("a<script>", [Tile(np.zeros((20, 30, 3), np.uint8), 'x"<y>')])], ["1 < 2"])
    assert "<script>" not in html and "&lt;b&gt;&amp;" in html and 'alt="x&quot;&lt;y&gt;"' in html


def test_a_near_duplicate_group_is_one_row_naming_its_folded_images(tmp_path, kit):
    """Issue 37, item 6: the report shows a group of near-identical images as one row, its first image shown and
    the others named as folded; a repeat row counts its images and edges."""
    from types import SimpleNamespace

    from segswap.collection.html_report import write_discovery_report
    from segswap.collection.index import IndexedImage
    from segswap.collection.regions import Pattern, PatternImage, RegionDiscovery

    rng = np.random.default_rng(0)
    images = [IndexedImage(k, kit.save(tmp_path / f"im{k}.png", kit.clutter(rng, 60, 80)), (80, 60), (4, 5))
              for k in range(4)]
    cells = np.ones((4, 5), bool)
    repeat = Pattern("repeat", 3.0, 1, [PatternImage(images[0], (0, 0, 40, 30), cells),
                                         PatternImage(images[1], (10, 10, 50, 40), cells)], {"keypoints": 1})
    group = Pattern("near-duplicates", 9.0, 2, [PatternImage(images[2], (0, 0, 80, 60), cells, [images[3]])],
                    {"keypoints": 2, "pair score": 2})
    found = RegionDiscovery([repeat, group], images=4, pairs=3, edges=3, thresholds={})
    matcher = SimpleNamespace(name="segswap", trained=True, backbone=SimpleNamespace(name="efficientnet-lite2-block12"))
    write_discovery_report(tmp_path / "report.html", found, matcher)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (tmp_path / "report.html").read_text()))
    assert "Pattern 1: 2 images, 1 verified edge (1 by keypoints)" in text
    assert "Near-duplicates: 2 near-identical images, shown as one, 2 verified edges" in text
    assert "folded: im3.png" in text and "im2.png (+1 near-identical)" in text
