"""A reviewer's fix, made in the review page in headless Chromium, reaches posters.csv
after the rectifications sensor's run."""

from __future__ import annotations

import re
import threading

import pandas as pd
from playwright import sync_api

from mpds_pipeline.review.server import make_review_server
from mpds_pipeline_tests.pipeline_helpers import remerge_via_sensor

from .browser import chromium, chromium_or_skip

chromium_or_skip()


def test_a_fix_saved_in_the_page_reaches_posters_csv(pipeline):
    root = pipeline["root"]
    review = make_review_server(root, host="127.0.0.1", port=0)
    thread = threading.Thread(target=review.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.goto(review.url)
            sync_api.expect(page.locator("body")).to_have_attribute("data-ready", "1")
            page.fill("#reviewer", "lee")
            page.keyboard.press("Escape")
            page.keyboard.press("e")
            page.keyboard.press("Control+A")
            page.keyboard.type("a desert highway under a purple sky")
            page.keyboard.press("Control+Enter")
            sync_api.expect(page.locator("#status")).to_have_text(re.compile(r"saved tt\d{7}"))
            saved_id = int(page.locator("#status").inner_text().split("tt")[1])
            browser.close()
    finally:
        review.shutdown()
        review.server_close()

    remerge_via_sensor(pipeline)
    posters = pd.read_csv(root / "export" / "posters.csv").set_index("id")
    assert posters.loc[saved_id, "text"].startswith("a desert highway under a purple sky")
    audit = pd.read_parquet(root / "prompts" / "rectification_audit.parquet")
    assert "lee" in set(audit.loc[audit["id"] == saved_id, "reviewer"])
