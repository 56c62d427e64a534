"""The review page driven in headless Chromium (Debian's ``/usr/bin/chromium``, Playwright).

Skipped with a reason where Chromium or Playwright is absent; no browser is ever
downloaded. Screenshots go to ``test-artifacts/review/`` under the repo root.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from playwright import sync_api

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.rectify import load_rectifications, record_sensor_check
from mpds_pipeline.review.sample import HOSTILE_TITLE, write_sample_data
from mpds_pipeline.review.server import make_review_server

from .browser import chromium, chromium_or_skip

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "review"

chromium_or_skip()
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser():
    with chromium() as started:
        yield started


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_sample_data(root)
    return root


@pytest.fixture
def server(data_dir):
    review = make_review_server(data_dir, host="127.0.0.1", port=0)
    thread = threading.Thread(target=review.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield review
    review.shutdown()
    review.server_close()
    thread.join(timeout=5)


@pytest.fixture
def open_page(browser, server):
    """Open the page in a fresh browser context (one reviewer each); close them after."""
    contexts = []

    def open_as(reviewer: str, query: str = ""):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(server.url + query)
        expect(page.locator("body")).to_have_attribute("data-ready", "1")
        page.fill("#reviewer", reviewer)
        page.keyboard.press("Escape")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def saved_texts(data_dir: Path) -> dict[int, str]:
    return load_rectifications(DataLayout(data_dir).rectifications_dir).corrections


def replace_text(page, text: str) -> None:
    page.keyboard.press("e")
    expect(page.locator("#editor")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def test_open_edit_save_reload_see_the_change(open_page, data_dir):
    page = open_page("ann")
    # Never reviewed first, then lowest caption confidence: The Kid (-3.1).
    expect(page.locator("#title")).to_have_text("The Kid")
    expect(page.locator("#caption")).to_have_text("a man and a child")
    expect(page.locator("#synopsis")).to_contain_text("The Kid. Genres: Comedy, Drama.")
    expect(page.locator("#current-text")).to_have_text("a man and a child. The Kid.")
    expect(page.locator("#correction-by")).to_have_text("never reviewed")
    # data-ready does not wait for the image: wait until it has loaded, then check its size.
    page.wait_for_function("document.querySelector('#poster').complete")
    assert page.eval_on_selector("#poster", "img => img.naturalWidth") == 60
    expect(page.locator("#keys")).to_contain_text("Ctrl")
    # No Dagster daemon has looked at the folder: the page says how to re-merge by hand.
    expect(page.locator("#remerge")).to_have_attribute("data-sensor", "off")
    expect(page.locator("#remerge code").last).to_have_text(
        ".venv/bin/dagster job execute -m mpds_pipeline -j export_dataset"
    )
    assert page.evaluate("document.querySelector('link[rel=icon]').href").endswith("/favicon.svg")

    replace_text(page, "a tramp holding a small child")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_have_text("saved tt0010050")
    expect(page.locator("#title")).to_have_text("The Arrival of a Train")  # moved on
    shot(page, "after-save")

    # The sensor looks at the folder (as under `mpds ui`); a reload starts on unfinished work.
    layout = DataLayout(data_dir)
    record_sensor_check(layout.rectifications_sensor_file, layout.rectifications_dir)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    expect(page.locator("#remerge")).to_have_attribute("data-sensor", "on")
    expect(page.locator("#remerge")).to_contain_text(
        "The re-merge sensor is on: it last looked at this folder just now ("
    )
    expect(page.locator("#title")).to_have_text("The Arrival of a Train")
    expect(page.locator("#position")).to_have_text("1 / 4")
    page.locator("#position").wait_for()
    for _ in range(3):
        page.keyboard.press("s")
    expect(page.locator("#title")).to_have_text("The Kid")
    expect(page.locator("#editor")).to_have_value("a tramp holding a small child")
    expect(page.locator("#correction-by")).to_have_text(
        re.compile(r"^last saved by ann just now \(\d{1,2} \w{3} \d{4}, \d\d:\d\d\)$")
    )
    expect(page.locator("#export-state")).to_have_text("saved: reaches the export at the next re-merge")
    shot(page, "saved-waiting-for-remerge")

    merged = load_rectifications(layout.rectifications_dir)
    assert merged.corrections == {10050: "a tramp holding a small child"}
    assert merged.accepted.loc[0, "reviewer"] == "ann"


def test_a_review_with_the_mouse_only(browser, server, data_dir):
    """Every action by clicking: name, approve, skip, back, edit and save."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(server.url)
        expect(page.locator("body")).to_have_attribute("data-ready", "1")
        page.locator("#reviewer").fill("mia")
        expect(page.locator("#progress-summary")).to_have_text("0 reviewed, 4 left of 4")
        expect(page.locator("#left-out")).to_have_text(
            "1 poster without a verified image left out: they cannot reach the export."
        )
        expect(page.locator("#back-button")).to_be_disabled()

        expect(page.locator("#title")).to_have_text("The Kid")
        page.get_by_role("button", name="Approve the caption unchanged").click()
        expect(page.locator("#status")).to_have_text("saved tt0010050")
        expect(page.locator("#title")).to_have_text("The Arrival of a Train")
        page.get_by_role("button", name="Skip").click()
        expect(page.locator("#title")).to_have_text("A Trip to the Moon")
        page.get_by_role("button", name="Back").click()
        expect(page.locator("#title")).to_have_text("The Arrival of a Train")
        page.locator("#editor").click()
        page.locator("#editor").fill("a steam train pulls into a crowded station")
        page.get_by_role("button", name="Save the correction").click()
        expect(page.locator("#status")).to_have_text("saved tt0000012")
        expect(page.locator("#progress-summary")).to_have_text("2 reviewed, 2 left of 4")
        page.get_by_role("button", name="Back").click()
        expect(page.locator("#export-state")).to_have_text("saved: reaches the export at the next re-merge")
        page.get_by_role("button", name="Reload queue").click()
        expect(page.locator("#position")).to_have_text("4 / 4")  # reviewed posters go last
        shot(page, "mouse-only")
    finally:
        context.close()
    assert saved_texts(data_dir) == {10050: "a man and a child", 12: "a steam train pulls into a crowded station"}


def test_keyboard_skip_back_and_approve(open_page, data_dir):
    page = open_page("ann")
    expect(page.locator("#position")).to_have_text("1 / 4")
    page.keyboard.press("s")
    expect(page.locator("#title")).to_have_text("The Arrival of a Train")
    page.keyboard.press("b")
    expect(page.locator("#title")).to_have_text("The Kid")
    page.keyboard.press("s")
    expect(page.locator("#title")).to_have_text("The Arrival of a Train")
    page.keyboard.press("a")  # approve the caption unchanged
    expect(page.locator("#status")).to_have_text("saved tt0000012")
    merged = load_rectifications(DataLayout(data_dir).rectifications_dir)
    assert merged.corrections == {12: "a train at a station"}
    assert merged.accepted.loc[0, "note"] == "approved unchanged"


def test_each_conflict_choice_saves_exactly_the_chosen_text(open_page, data_dir):
    """Ann saves first on four posters; Bob, who loaded them before, resolves each
    conflict differently. No choice ever types into the text box."""
    ann, bob = open_page("ann"), open_page("bob")
    ann_texts = {10050: "ann: a tramp and a child", 12: "ann: a train", 417: "ann: a rocket", 25: "ann: a hat"}
    bob_texts = {10050: "bob: a man and a boy", 12: "bob: a locomotive", 417: "bob: a bullet", 25: "bob: a bowler"}

    def conflict_on(movie_id: int, title: str) -> None:
        for page in (ann, bob):
            expect(page.locator("#title")).to_have_text(title)
        ann.locator("#editor").fill(ann_texts[movie_id])
        ann.get_by_role("button", name="Save the correction").click()
        expect(ann.locator("#status")).to_have_text(f"saved tt{movie_id:07d}")
        bob.locator("#editor").fill(bob_texts[movie_id])
        bob.get_by_role("button", name="Save the correction").click()
        expect(bob.locator("#conflict")).to_be_visible()
        expect(bob.locator("#conflict-reviewer")).to_have_text("ann")
        expect(bob.locator("#conflict-text")).to_have_text(ann_texts[movie_id])
        expect(bob.locator("#editor")).to_have_value(bob_texts[movie_id])  # his text is kept
        expect(bob.locator("#status")).to_have_text("not saved: conflict")
        expect(bob.locator("#take-theirs")).to_be_focused()  # out of the text box
        assert saved_texts(data_dir)[movie_id] == ann_texts[movie_id]

    # 1. The key `t` right after the conflict: their text, nothing typed, nothing written.
    conflict_on(10050, "The Kid")
    shot(bob, "conflict")
    files_before = sorted(DataLayout(data_dir).rectifications_dir.glob("*.csv"))
    bob.keyboard.press("t")
    expect(bob.locator("#conflict")).to_be_hidden()
    expect(bob.locator("#editor")).to_have_value(ann_texts[10050])
    assert sorted(DataLayout(data_dir).rectifications_dir.glob("*.csv")) == files_before
    bob.get_by_role("button", name="Skip").click()

    # 2. The button "Save my text over theirs".
    conflict_on(12, "The Arrival of a Train")
    bob.get_by_role("button", name="Save my text over theirs").click()
    expect(bob.locator("#status")).to_have_text("saved tt0000012")

    # 3. Back in the text box: Alt+T takes theirs, then Bob refines it and saves.
    conflict_on(417, "A Trip to the Moon")
    bob.locator("#editor").click()
    bob.keyboard.press("Alt+t")
    expect(bob.locator("#editor")).to_have_value(ann_texts[417])
    bob.locator("#editor").press("End")
    bob.keyboard.type(" at dusk")
    bob.keyboard.press("Control+Enter")
    expect(bob.locator("#status")).to_have_text("saved tt0000417")

    # 4. In the text box, Alt+K saves his own text over hers.
    conflict_on(25, HOSTILE_TITLE)
    bob.locator("#editor").click()
    bob.keyboard.press("Alt+k")
    expect(bob.locator("#status")).to_have_text("saved tt0000025")

    assert saved_texts(data_dir) == {
        10050: "ann: a tramp and a child",
        12: "bob: a locomotive",
        417: "ann: a rocket at dusk",
        25: "bob: a bowler",
    }


def test_web_strings_show_as_text(open_page):
    page = open_page("ann", "?")
    page.select_option("#genre", "Drama")  # queue: The Kid, then the hostile title
    expect(page.locator("#position")).to_have_text("1 / 2")
    page.keyboard.press("s")
    expect(page.locator("#title")).to_have_text(HOSTILE_TITLE)
    expect(page.locator("#caption")).to_have_text("a man in a hat <b>bold</b>")
    expect(page.locator("#synopsis")).to_contain_text("<script>alert(1)</script>. Genres: Drama.")
    assert page.locator("#item script, #item b, #item img:not(#poster)").count() == 0
    assert page.eval_on_selector("#title", "el => el.innerHTML") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    # Edit and save through the hostile item too: still text after the round trip.
    replace_text(page, "<img src=x onerror=alert(3)> a man")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_have_text("saved tt0000025")
    page.keyboard.press("b")
    expect(page.locator("#correction-by")).to_contain_text("last saved by ann")
    expect(page.locator("#editor")).to_have_value("<img src=x onerror=alert(3)> a man")
    shot(page, "escaping")
    assert page.dialogs == []


def test_progress_counts_per_reviewer(open_page):
    ann = open_page("ann")
    expect(ann.locator("#progress-summary")).to_have_text("0 reviewed, 4 left of 4")
    ann.keyboard.press("a")
    expect(ann.locator("#status")).to_have_text("saved tt0010050")
    expect(ann.locator("#title")).to_have_text("The Arrival of a Train")
    ann.keyboard.press("a")
    expect(ann.locator("#status")).to_have_text("saved tt0000012")
    bob = open_page("bob", "?")
    bob.select_option("#partition", "tt0000001-tt0010000")
    expect(bob.locator("#position")).to_have_text("1 / 3")  # the partition's queue has loaded
    expect(bob.locator("#title")).to_have_text("A Trip to the Moon")  # 12 is reviewed: last
    bob.keyboard.press("a")
    expect(bob.locator("#status")).to_have_text("saved tt0000417")
    expect(bob.locator("#progress-summary")).to_have_text("2 reviewed, 1 left of 3")  # the partition only

    ann.keyboard.press("r")  # reload the queue: progress over all posters
    expect(ann.locator("#progress-summary")).to_have_text("3 reviewed, 1 left of 4")
    rows = ann.locator("#progress-reviewers tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_text("ann22")
    expect(rows.nth(1)).to_have_text("bob11")
    shot(ann, "progress")
