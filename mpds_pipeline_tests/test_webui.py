"""The web UI as a new user meets it, in headless Chromium against a real
``dagster-webserver``: runs listed under their named jobs, the statistics plots and
tables shown inline on the asset page (no click), the caption thumbnails inline, and the
rectifications audit showing what a reviewer typed (angle brackets, pipes) with empty
cells for missing values. One instance, one webserver and one browser for the module;
screenshots go to test-artifacts/webui/.
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
from playwright import sync_api

from mpds_pipeline.base import jobnames
from mpds_pipeline.cli.local import job_command, launch_and_follow
from mpds_pipeline.sample_server import SampleImdbServer

from .browser import chromium
from .services import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
ARTIFACTS = REPO_ROOT / "test-artifacts" / "webui"
PARTITION = "tt0000001-tt0000030"
HOSTILE_FIX = "<img src=x onerror=alert(1)> a man | with a pipe"
UI_TIMEOUT_MS = 60_000

expect = sync_api.expect


# Run in a fresh interpreter: the code location reads MPDS_* when it is imported. The
# named jobs run as `dagster job execute` runs them (in process here, for speed); the
# correction is merged before any caption exists, so the text it replaced is missing.
# The caption job is launched afterwards (see the fixture).
MATERIALISE_SCRIPT = f"""
import pandas as pd
from dagster import DagsterInstance
from mpds_pipeline.defs.assets.partitions import register_configured_ranges
from mpds_pipeline.definitions import defs
from mpds_pipeline.base.layout import default_data_dir, DataLayout

layout = DataLayout(default_data_dir())
with DagsterInstance.get() as instance:
    register_configured_ranges(instance)

    def run(job, partition=None):
        result = defs.get_job_def(job).execute_in_process(instance=instance, partition_key=partition)
        assert result.success, job

    run({jobnames.TITLE_CRAWL!r}, {PARTITION!r})
    run({jobnames.PERSON_CRAWL!r}, "nm0000001-nm0000030")
    run({jobnames.CURATE!r})
    movie_id = int(pd.read_parquet(layout.curated_dir / "movies.parquet")["id"].iloc[0])
    layout.rectifications_dir.mkdir(parents=True)
    fix = pd.DataFrame({{"id": [movie_id], "text": [{HOSTILE_FIX!r}], "reviewer": ["ana"]}})
    fix.to_csv(layout.rectifications_dir / "fix.csv", index=False)
    run({jobnames.EXPORT!r})
"""


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


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """A webserver on a free loopback port over an instance that ran the named jobs."""
    from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

    root = tmp_path_factory.mktemp("webui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MPDS_DATA_DIR": str(root / "data"),
        "MPDS_TITLE_IDS": "1-60",
        "MPDS_PERSON_IDS": "1-30",
        "MPDS_PARTITION_SIZE": "30",
        "MPDS_RATE": "50",
        "MPDS_BACKOFF_BASE_S": "0.05",
        "MPDS_BLIP2_MODEL": str(save_tiny_blip2(root / "tiny-blip2")),
        "MPDS_DEVICE": "cpu",
    }
    with SampleImdbServer() as server:
        crawl_env = {**env, "MPDS_IMDB_BASE_URL": server.base_url}
        done = subprocess.run(
            [sys.executable, "-c", MATERIALISE_SCRIPT],
            env=crawl_env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # The captions run is launched the way the demo launches runs: only a launched run
        # carries its code location, which the Overview page's timeline needs.
        launch_and_follow(job_command("launch", jobnames.CAPTION, PARTITION), crawl_env, echo=lambda line: None)
    port, log = free_port(), root / "webserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN_DIR / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", "mpds_pipeline"],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
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


@pytest.fixture(scope="module")
def browser():
    with chromium() as started:
        yield started


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    # A first visit may be greeted by the "Join the Dagster community" dialog: skip it, as a user would.
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"), lambda _: page.get_by_role("button", name="Skip").click()
    )
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def job_link(page, job: str):
    return page.locator(f"a[href$='/{job}']").first


def metadata_row(page, label: str):
    """The row of the asset's latest-materialisation metadata named ``label``."""
    return page.locator("tr", has=page.locator("td", has_text=label).locator(f"text='{label}'")).first


def test_runs_are_listed_under_the_named_jobs(webserver, page):
    page.goto(webserver)  # the landing page: the Overview's timeline
    expect(job_link(page, jobnames.CAPTION)).to_be_visible()
    expect(page.get_by_text("No runs or scheduled ticks")).to_have_count(0)
    shot(page, "1-overview")
    page.goto(f"{webserver}/runs")
    for job in (jobnames.TITLE_CRAWL, jobnames.PERSON_CRAWL, jobnames.CURATE, jobnames.EXPORT, jobnames.CAPTION):
        expect(job_link(page, job)).to_be_visible()
    shot(page, "2-runs")


def test_statistics_plots_and_tables_show_on_the_asset_page_without_a_click(webserver, page):
    page.goto(f"{webserver}/assets/dataset_statistics")
    row = metadata_row(page, "genres_plot")
    plot = row.locator("img[src^='/logs/mpds_images/']")
    expect(plot).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=plot.element_handle())
    assert plot.bounding_box()["height"] > 100
    for label in ("record_types_plot", "missing_plot"):
        expect(metadata_row(page, label).locator("img")).to_be_visible()
    # The same figures as text bar charts: a table inline.
    genres = metadata_row(page, "genres")
    expect(genres.locator("th", has_text="% of records")).to_be_visible()
    expect(genres.locator("td", has_text="█").first).to_be_visible()
    expect(page.get_by_text("[Show Markdown]")).to_have_count(0)
    metadata_row(page, "missing_fields").scroll_into_view_if_needed()
    shot(page, "3-statistics")


def test_caption_thumbnails_show_beside_their_captions(webserver, page):
    page.goto(f"{webserver}/assets/vision_prompts")
    thumbnails = metadata_row(page, "posters").locator("img[src^='/logs/mpds_images/']")
    expect(thumbnails.first).to_be_visible()
    assert thumbnails.count() >= 2
    page.wait_for_function("img => img.complete && img.naturalWidth > 20", arg=thumbnails.first.element_handle())
    thumbnails.first.scroll_into_view_if_needed()
    shot(page, "4-caption-thumbnails")


def test_rectifications_audit_shows_what_the_reviewer_typed(webserver, page):
    page.goto(f"{webserver}/assets/rectifications")
    audit = metadata_row(page, "audit")
    expect(audit.locator("th", has_text="replaced_text")).to_be_visible()
    headers = [text.strip() for text in audit.locator("th").all_inner_texts()]
    cells = audit.locator("tbody tr").first.locator("td").all_inner_texts()
    values = dict(zip(headers, cells))
    assert values["text"] == HOSTILE_FIX
    assert values["replaced_text"] == ""  # no caption existed: empty, never "nan"
    assert values["reviewer"] == "ana"
    assert page.dialogs == [] and page.locator("img[src='x']").count() == 0
    audit.scroll_into_view_if_needed()
    shot(page, "5-rectifications-audit")
