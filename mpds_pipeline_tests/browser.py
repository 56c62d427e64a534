"""Headless Chromium for the UI tests: Debian's browser driven by Playwright.

No browser is ever downloaded. A module that needs one calls ``chromium_or_skip()`` at
import, so it is skipped with a reason where Chromium is absent.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright import sync_api

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
# This machine has no network: without the background-networking flags Chromium keeps
# trying to reach Google's hosts at every start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> str:
    """The Chromium executable, or skip the calling test module."""
    if DEBIAN_CHROMIUM.is_file():
        return str(DEBIAN_CHROMIUM)
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(
            f"Chromium not found at {DEBIAN_CHROMIUM} or on PATH (Debian package 'chromium')", allow_module_level=True
        )
    return found


@contextmanager
def chromium() -> Iterator[sync_api.Browser]:
    """A started headless Chromium, closed on exit."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_or_skip(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
