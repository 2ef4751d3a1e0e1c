"""The viewer's pages in a real browser (headless chromium): what a user does, and what they see."""

from __future__ import annotations

import json

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from segswap.collection.methods import DISCOVERY_DESIGNS

#: Seconds a page may take to show a background job's result (a search of 12 images takes about 1 s).
JOB_WAIT = 120


def open_page(browser, url: str):
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))


def test_the_collection_page_shows_thumbnails_and_filters_by_folder(server, browser, screenshot):
    open_page(browser, server["url"] + "/collection")
    tiles = browser.find_elements(By.CSS_SELECTOR, "#grid .tile")
    assert len(tiles) == 12
    assert "1–12 of 12" in browser.find_element(By.ID, "range").text
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"))
    screenshot(browser, "collection")
    Select(browser.find_element(By.ID, "folder")).select_by_value("=face")
    WebDriverWait(browser, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .tile")) == 4)
    assert all(t.get_attribute("title").startswith("face/") for t in browser.find_elements(By.CSS_SELECTOR, "#grid .tile"))
    assert "folder=face" in browser.current_url  # the filter is in the address, so it can be bookmarked
    thumbnails = list((server["index"] / "viewer" / "pictures" / "thumb").rglob("*.jpg"))
    assert len(thumbnails) == 12, "each thumbnail is cached on disk beside the index"


def test_a_box_drawn_on_an_image_gives_ranked_results_with_outlined_regions(server, browser, screenshot):
    face = server["viewer"].catalog.page("face", 0, 1)[1][0]
    open_page(browser, f"{server['url']}/image/{face.id}")
    canvas = browser.find_element(By.ID, "boxes")
    width, height = canvas.size["width"], canvas.size["height"]
    # Drag from the upper left of the middle to the lower right: the face in the MSRC face images.
    ActionChains(browser).move_to_element_with_offset(canvas, -width // 4, -height // 3).click_and_hold() \
        .move_by_offset(width // 2, height // 2).move_by_offset(5, 5).release().perform()
    WebDriverWait(browser, JOB_WAIT).until(lambda d: d.find_element(By.ID, "hits").get_attribute("data-count"))
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits .hit")
    assert len(hits) >= 5
    status = browser.find_element(By.ID, "status").text
    assert "for the detail" in status and "shortlisted" in status
    verdicts = [h.find_element(By.CSS_SELECTOR, ".verdict").text for h in hits]
    assert set(verdicts) <= {"match", "no match"} and "match" in verdicts
    assert "score" in hits[0].text and "% of the query matched" in hits[0].text
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#hits .hit canvas").get_attribute("data-region"))
    # The best results are faces: the detail's own image and the other faces of the group.
    top = [int(h.get_attribute("data-id")) for h in hits[:3]]
    assert face.id in top
    assert sum(server["viewer"].catalog.get(i).folder == "face" for i in top) >= 2

    hits[1].click()
    pair = browser.find_element(By.ID, "pair-canvas")
    WebDriverWait(browser, JOB_WAIT).until(lambda d: pair.get_attribute("data-lines") not in (None, "hidden"))
    assert int(pair.get_attribute("data-lines")) > 0
    assert pair.get_attribute("data-masks") == "shown"
    browser.set_window_size(1200, 1500)  # the picture, the results and the side-by-side view in one shot
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "image")
    browser.set_window_size(1200, 900)
    browser.find_element(By.ID, "show-masks").click()
    assert pair.get_attribute("data-masks") == "hidden"
    browser.find_element(By.ID, "show-lines").click()
    assert pair.get_attribute("data-lines") == "hidden"


def test_a_second_search_replaces_the_first_in_the_page(server, browser):
    image = server["viewer"].catalog.page("cow", 0, 1)[1][0]
    open_page(browser, f"{server['url']}/image/{image.id}")
    browser.find_element(By.ID, "whole").click()
    browser.find_element(By.ID, "whole").click()
    WebDriverWait(browser, JOB_WAIT).until(lambda d: d.find_element(By.ID, "hits").get_attribute("data-count"))
    assert "for the whole image" in browser.find_element(By.ID, "status").text
    searches = server["viewer"].search_lane.history("search")
    assert searches[-1].state == "done" and searches[-2].state in ("cancelled", "done")


def test_discovery_runs_from_the_page_and_a_pattern_opens(server, browser, screenshot):
    open_page(browser, server["url"] + "/discovery")
    assert Select(browser.find_element(By.ID, "design")).first_selected_option.text == DISCOVERY_DESIGNS[0]
    browser.find_element(By.ID, "top-k").send_keys("3")  # fewer pairs than the design's 10: a shorter test
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, JOB_WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#patterns .pattern"))
    assert "done in" in browser.find_element(By.ID, "status").text
    saved = json.loads((server["index"] / "viewer" / "discovery.json").read_text())
    assert saved["design"] == DISCOVERY_DESIGNS[0] and saved["pairs"] <= 3 * 12
    patterns = browser.find_elements(By.CSS_SELECTOR, "#patterns .pattern")
    assert len(patterns) == len(saved["patterns"]) >= 1
    first = patterns[0]
    crops = first.find_elements(By.CSS_SELECTOR, ".strip img")
    assert len(crops) == len(saved["patterns"][0]["images"]) >= 2
    WebDriverWait(browser, 30).until(lambda d: all(c.get_attribute("naturalWidth") != "0" for c in crops))
    first.find_element(By.CSS_SELECTOR, ".head").click()
    WebDriverWait(browser, 10).until(expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".pattern.open .members a")))
    assert len(first.find_elements(By.CSS_SELECTOR, ".members a")) == len(crops)
    screenshot(browser, "discovery")


def test_a_discovery_file_shows_repeats_first_and_near_identical_images_folded(server, browser, tmp_path):
    """Issue 37, item 6: repeats in the file's order, then each group of near-identical images folded
    until opened; an image with near-identical ones folded onto it says so. A file of the spectral design
    written before patterns had a kind shows as repeats."""
    catalog = server["viewer"].catalog
    cows, faces, planes = ([str(catalog.absolute(image)) for image in catalog.page(group, 0, 3)[1]]
                           for group in ("cow", "face", "plane"))

    def image(path, folded=()):
        return {"path": path, "box": [10, 10, 120, 100], "near_duplicates": list(folded)}

    regions = {"design": "regions", "images": 12, "pairs": 30, "edges": 5, "patterns": [
        {"kind": "repeat", "strength": 3.0, "edges": 2, "images": [image(cows[0], cows[1:2]), image(faces[0])]},
        {"kind": "near-duplicates", "strength": 2.0, "edges": 2, "images": [image(planes[0], planes[1:3])]},
        {"kind": "repeat", "strength": 1.0, "edges": 1, "images": [image(faces[1]), image(faces[2])]}]}
    spectral = {"images": 12, "pairs": 20, "nodes": 40, "edges": 80, "patterns": [
        {"strength": 5.0, "nodes": 9, "images": [{"path": cows[2], "box": [0, 0, 50, 50]},
                                                {"path": faces[0], "box": [0, 0, 50, 50]}]}]}
    viewer = server["viewer"]
    try:
        viewer.settings.discovery = tmp_path / "regions.json"
        viewer.settings.discovery.write_text(json.dumps(regions))
        open_page(browser, server["url"] + "/discovery")
        shown = browser.find_elements(By.CSS_SELECTOR, "#patterns > .pattern")
        assert [node.tag_name for node in shown] == ["section", "section", "details"]
        heads = [node.find_element(By.CSS_SELECTOR, ".head").text for node in shown]
        assert heads[0].startswith("Pattern 1 — 2 images (+1 near-identical), 2 verified edges, strength 3.0")
        assert heads[1].startswith("Pattern 2 — 2 images, 1 verified edges, strength 1.0")
        assert heads[2].startswith("Near-identical images: 3")
        assert browser.find_element(By.ID, "summary").text.startswith(
            "2 repeated patterns and 1 groups of near-identical images in 12 images (regions: 30 pairs judged")
        group = shown[2]
        assert group.get_attribute("open") is None and not group.find_element(By.CSS_SELECTOR, ".members").is_displayed()
        assert not any(link.is_displayed() for link in group.find_elements(By.CSS_SELECTOR, ".members a"))
        group.find_element(By.TAG_NAME, "summary").click()
        WebDriverWait(browser, 10).until(lambda d: len(group.find_elements(By.CSS_SELECTOR, ".members a")) == 3)
        links = group.find_elements(By.CSS_SELECTOR, ".members a")
        assert all(link.is_displayed() for link in links)
        assert [link.get_attribute("title") for link in links] == planes
        shown[0].find_element(By.CSS_SELECTOR, ".head").click()
        members = shown[0].find_elements(By.CSS_SELECTOR, ".members a")
        assert [m.find_elements(By.CSS_SELECTOR, ".near")[0].text if m.find_elements(By.CSS_SELECTOR, ".near") else ""
                for m in members] == ["+1 near-identical", ""]

        viewer.settings.discovery = tmp_path / "spectral.json"
        viewer.settings.discovery.write_text(json.dumps(spectral))
        open_page(browser, server["url"] + "/discovery")
        (only,) = browser.find_elements(By.CSS_SELECTOR, "#patterns > .pattern")
        assert only.find_element(By.CSS_SELECTOR, ".head").text.startswith("Pattern 1 — 2 images, 9 correspondences")
        assert "1 repeated patterns and 0 groups" in browser.find_element(By.ID, "summary").text
    finally:
        viewer.settings.discovery = None


def test_cosegmentation_masks_toggle_and_a_wrong_mark_is_saved(server, browser, screenshot):
    open_page(browser, server["url"] + "/cosegment")
    figures = browser.find_elements(By.CSS_SELECTOR, ".coseg figure")
    assert len(figures) == 12
    masks = browser.find_elements(By.CSS_SELECTOR, ".coseg img.mask")
    assert len(masks) == 12 and masks[0].is_displayed()
    WebDriverWait(browser, 30).until(lambda d: all(m.get_attribute("naturalWidth") != "0" for m in masks))
    browser.find_element(By.ID, "show-masks").click()
    assert not masks[0].is_displayed()
    browser.find_element(By.ID, "show-masks").click()
    assert masks[0].is_displayed()

    figures[1].find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(lambda d: "wrong" in figures[1].get_attribute("class"))
    saved = json.loads((server["index"] / "viewer" / "cosegment-overrides.json").read_text())
    (marks,) = saved["wrong"].values()
    assert len(marks) == 1
    open_page(browser, server["url"] + "/cosegment")  # the mark survives a reload
    assert "wrong" in browser.find_elements(By.CSS_SELECTOR, ".coseg figure")[1].get_attribute("class")
    WebDriverWait(browser, 30).until(lambda d: all(m.get_attribute("naturalWidth") != "0"
                                                   for m in d.find_elements(By.CSS_SELECTOR, ".coseg img")))
    screenshot(browser, "cosegment")
    browser.find_elements(By.CSS_SELECTOR, ".coseg figure")[1].find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 10).until(lambda d: "wrong" not in d.find_elements(By.CSS_SELECTOR, ".coseg figure")[1].get_attribute("class"))
    assert not json.loads((server["index"] / "viewer" / "cosegment-overrides.json").read_text())["wrong"][str(server["masks"].resolve())]


#: Elements of each result card (and the cards themselves) reaching outside their card (the list): none should.
OUTSIDE_THEIR_CARD = """
const list = document.getElementById("hits").getBoundingClientRect();
return [...document.querySelectorAll("#hits .hit")].flatMap((card) => {
  const box = card.getBoundingClientRect();
  const out = box.right > list.right + 0.5 ? ["the card, " + card.textContent.slice(0, 40)] : [];
  return out.concat([...card.querySelectorAll("*")].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.right > box.right + 0.5 || e.scrollWidth > e.clientWidth + 1;
  }).map((e) => e.tagName + ": " + e.textContent.slice(0, 40)));
});
"""


def test_result_cards_wrap_long_names_and_scores(server, browser):
    """Item 7 of issue 36: result cards clipped long file names and scores instead of wrapping them."""
    image = server["viewer"].catalog.page("plane", 0, 1)[1][0]
    browser.set_window_size(700, 900)  # the cards at their narrowest
    try:
        open_page(browser, f"{server['url']}/image/{image.id}")
        browser.find_element(By.ID, "whole").click()
        WebDriverWait(browser, JOB_WAIT).until(lambda d: d.find_element(By.ID, "hits").get_attribute("data-count"))
        browser.execute_script("document.querySelector('#hits .hit a').textContent = "
                               "'plane/' + 'a_long_file_name_without_spaces_'.repeat(6) + '.png'")
        assert browser.execute_script(OUTSIDE_THEIR_CARD) == []
    finally:
        browser.set_window_size(1200, 900)


def test_each_cosegmentation_mask_lies_exactly_on_its_picture(server, browser):
    """Item 7: the mask was sized to its figure, which a caption wider than the picture widens (a
    portrait picture, a long name): a correct mask looked stretched."""
    open_page(browser, server["url"] + "/cosegment")
    WebDriverWait(browser, 30).until(lambda d: all(m.get_attribute("naturalWidth") != "0"
                                                   for m in d.find_elements(By.CSS_SELECTOR, ".coseg img")))
    browser.execute_script("document.querySelector('.coseg figcaption span').textContent = "
                           "'a_long_file_name_without_spaces_'.repeat(3) + '.png'")
    placed = browser.execute_script("""
      return [...document.querySelectorAll(".coseg figure")].map((figure) => {
        const [picture, mask] = [...figure.querySelectorAll(".layers img")].map((i) => i.getBoundingClientRect());
        return [picture.left, picture.top, picture.width, picture.height, mask.left, mask.top, mask.width, mask.height];
      });""")
    assert len(placed) == 12
    for rect in placed:
        assert all(abs(p - m) <= 1 for p, m in zip(rect[:4], rect[4:])), rect
