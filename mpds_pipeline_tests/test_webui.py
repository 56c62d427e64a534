"""The web UI as a new user meets it: start ``dagster-webserver``, open the asset
lineage, open ``dataset_statistics`` and its latest materialisation's metadata, and look
at the statistics plot. Headless Debian Chromium driven by Playwright (no browser
download); screenshots go to test-artifacts/webui/.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mpds_pipeline.sample_server import SampleImdbServer

from .services import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
ARTIFACTS = REPO_ROOT / "test-artifacts" / "webui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PARTITION = "tt0000001-tt0000030"
UI_TIMEOUT_MS = 60_000


def chromium_path() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Chromium not found at /usr/bin/chromium or on PATH: apt-get install chromium")
    return found


# Run in a fresh interpreter: the code location reads MPDS_* when it is imported.
MATERIALISE_SCRIPT = f"""
from dagster import DagsterInstance, materialize
from mpds_pipeline.assets.partitions import register_configured_ranges
from mpds_pipeline.definitions import defs

with DagsterInstance.get() as instance:
    register_configured_ranges(instance)
    for selection, partition in ((["title_pages", "title_records"], "{PARTITION}"), (["movies", "dataset_statistics"], None)):
        result = materialize(defs.assets, selection=selection, partition_key=partition, instance=instance, resources=defs.resources)
        assert result.success, selection
"""


def materialise_statistics(env: dict[str, str]) -> None:
    """A crawl partition, then movies and dataset_statistics, in the instance (in-process executor: fast)."""
    completed = subprocess.run([sys.executable, "-c", MATERIALISE_SCRIPT], env=env, cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


def wait_for_webserver(process: subprocess.Popen, url: str, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"dagster-webserver exited:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"dagster-webserver did not answer /server_info in {timeout_s}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def webserver(dagster_home, tmp_path):
    """A webserver on a free loopback port over an instance that has the statistics."""
    data_dir = tmp_path / "data"
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DAGSTER_DISABLE_TELEMETRY": "1", "MPDS_DATA_DIR": str(data_dir),
           "MPDS_TITLE_IDS": "1-60", "MPDS_PERSON_IDS": "1-30", "MPDS_PARTITION_SIZE": "30", "MPDS_RATE": "50",
           "MPDS_BACKOFF_BASE_S": "0.05"}
    with SampleImdbServer() as server:
        materialise_statistics({**env, "MPDS_IMDB_BASE_URL": server.base_url})
    port, log = free_port(), tmp_path / "webserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN_DIR / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", "mpds_pipeline"],
            env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_webserver(process, url, log)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_new_user_finds_the_lineage_and_the_statistics_plot(webserver):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            # A first visit may be greeted by the "Join the Dagster community" dialog: skip it, as a user would.
            page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                                     lambda _: page.get_by_role("button", name="Skip").click())

            # The global lineage shows the asset groups.
            page.goto(f"{webserver}/asset-groups")
            for group in ("crawl", "curate"):
                page.get_by_text(group, exact=True).first.wait_for(state="visible")
            page.screenshot(path=ARTIFACTS / "1-global-lineage.png")

            # The curate group's graph shows the assets, dataset_statistics materialised.
            page.goto(f"{webserver}/locations/mpds_pipeline/asset-groups/curate")
            for name in ("title_records", "movies", "dataset_statistics", "export"):
                page.get_by_text(name, exact=True).first.wait_for(state="visible")
            page.get_by_text("Materialized", exact=True).nth(1).wait_for(state="visible")  # movies and dataset_statistics
            page.screenshot(path=ARTIFACTS / "2-curate-lineage.png")

            # The asset page lists the latest materialisation's metadata: the table inline ...
            page.goto(f"{webserver}/assets/dataset_statistics")
            page.get_by_text("genres_plot", exact=True).wait_for(state="visible")
            page.get_by_text("Records:", exact=False).first.wait_for(state="visible")
            page.screenshot(path=ARTIFACTS / "3-statistics-metadata.png", full_page=True)

            # ... and the plot one click away, drawn from its data: URL at a real size.
            page.locator("tr", has_text="genres_plot").get_by_text("[Show Markdown]").click()
            plot = page.get_by_role("dialog").locator("img[src^='data:image/png']")
            plot.wait_for(state="visible")
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=plot.element_handle())
            natural_width = plot.evaluate("img => img.naturalWidth")
            box = plot.bounding_box()
            page.screenshot(path=ARTIFACTS / "4-genres-plot.png")
        finally:
            browser.close()

    assert natural_width > 100
    assert box is not None and box["width"] > 100 and box["height"] > 100, box
