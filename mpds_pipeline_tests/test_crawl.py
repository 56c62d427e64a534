"""The crawl engine: one status per id, blocking stops, kill-and-resume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpds_pipeline.imdb.archive import PageArchive
from mpds_pipeline.imdb.classify import classify_response
from mpds_pipeline.imdb.crawl import CrawlStopped, ImdbBlockingError, crawl_partition, read_outcomes
from mpds_pipeline.net.client import FetchResponse
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.sample_server import FaultPlan, FaultRule, SampleImdbServer, sample_person, sample_title

REPO = Path(__file__).resolve().parents[1]


def settings_for(server, **overrides) -> ClientSettings:
    values = dict(
        base_url=server.base_url,
        rate_per_second=0,
        concurrency=4,
        timeout_s=2.0,
        max_retries=2,
        backoff_base_s=0.01,
        backoff_max_s=0.1,
    )
    values.update(overrides)
    return ClientSettings(**values)


@pytest.fixture
def server():
    with SampleImdbServer() as srv:
        yield srv


def test_every_id_gets_exactly_one_status_matching_the_truth(server, tmp_path):
    result = crawl_partition("title", range(1, 31), settings_for(server), tmp_path)
    outcomes = read_outcomes(tmp_path)
    assert [o.id for o in outcomes] == list(range(1, 31))
    for o in outcomes:
        truth = sample_title(o.id)
        assert o.status == truth["status"], o
        if o.status == "redirect":
            assert o.redirect_id == truth["redirect_to"] and o.http_status == 301
    assert result.status_counts()["ok"] == sum(sample_title(i)["status"] == "ok" for i in range(1, 31))
    # The redirect from tt11 to tt10 is recorded, not followed: tt10 is fetched once.
    assert server.request_count("/title/tt0000010") == 1
    archived = {r.id: r for r in PageArchive(tmp_path).iter_responses()}
    assert archived[11].status == "redirect" and archived[11].body == b""
    assert archived[7].status == "missing" and archived[19].status == "missing"  # 404 and soft 404
    assert result.unattempted_ids == [] and not result.stopped_blocked


def test_person_partition(server, tmp_path):
    crawl_partition("person", range(1, 21), settings_for(server), tmp_path)
    outcomes = read_outcomes(tmp_path)
    assert [o.id for o in outcomes] == list(range(1, 21))
    for o in outcomes:
        assert o.kind == "person" and o.status == sample_person(o.id)["status"]


def test_consecutive_blocks_stop_the_partition(server, tmp_path):
    server.set_faults(FaultPlan([FaultRule("waf", ids=frozenset(range(5, 1000)))]))
    settings = settings_for(server, concurrency=2)
    with pytest.raises(ImdbBlockingError) as excinfo:
        crawl_partition("title", range(1, 41), settings, tmp_path, max_consecutive_blocks=3)
    message = str(excinfo.value)
    assert "IMDb is blocking" in message and "not work around" in message and "wait" in message
    result = excinfo.value.result
    assert result.stopped_blocked and result.unattempted_ids
    outcomes = read_outcomes(tmp_path)  # written before raising
    blocked = [o.id for o in outcomes if o.status == "blocked"]
    assert len(blocked) >= 3 and all(i >= 5 for i in blocked)
    assert not any(o.status == "missing" and o.id >= 5 for o in outcomes)  # blocking is never "missing"
    # The rest were left unattempted: the server never saw them.
    for item_id in result.unattempted_ids:
        assert server.request_count(f"/title/tt{item_id:07d}") == 0
    assert set(result.unattempted_ids).isdisjoint(o.id for o in outcomes)

    # Once the block lifts, a rerun fetches the blocked and unattempted ids, nothing archived.
    server.set_faults(None)
    server.clear_log()
    done_before = PageArchive(tmp_path).archived_ids("title")
    assert done_before  # ids 1-4 were archived before the block
    crawl_partition("title", range(1, 41), settings, tmp_path)
    assert all(server.request_count(f"/title/tt{i:07d}") == 0 for i in done_before)
    statuses = {o.id: o.status for o in read_outcomes(tmp_path)}
    assert sorted(statuses) == list(range(1, 41)) and "blocked" not in statuses.values()


def test_failed_ids_keep_the_last_error_and_are_retried_next_run(server, tmp_path):
    server.set_faults(FaultPlan([FaultRule("503", ids=frozenset({2, 3}))]))
    crawl_partition("title", range(1, 6), settings_for(server), tmp_path)
    failed = {o.id: o for o in read_outcomes(tmp_path) if o.status == "failed"}
    assert set(failed) == {2, 3} and "HTTP 503" in failed[2].error and failed[2].attempts == 3
    server.set_faults(None)
    server.clear_log()
    crawl_partition("title", range(1, 6), settings_for(server), tmp_path)
    assert server.request_count("/title/") == 2
    assert {o.id: o.status for o in read_outcomes(tmp_path)}[2] == "ok"


def test_kill_and_resume_refetches_nothing_archived(server, tmp_path):
    ids = range(1, 61)
    script = (
        "import sys; from pathlib import Path\n"
        "from mpds_pipeline.net.client import ClientSettings\n"
        "from mpds_pipeline.imdb.crawl import crawl_partition\n"
        f"crawl_partition('title', range(1, 61), ClientSettings(base_url={server.base_url!r}, "
        f"rate_per_second=15, concurrency=4), Path({str(tmp_path)!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while server.request_count("/title/") < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the crawl finished before it could be killed"

    archived_before = PageArchive(tmp_path).archived_ids("title")
    assert 0 < len(archived_before) < 60
    server.clear_log()
    result = crawl_partition("title", ids, settings_for(server), tmp_path)
    assert result.skipped_archived == len(archived_before)
    for item_id in archived_before:
        assert server.request_count(f"/title/tt{item_id:07d}") == 0, f"tt{item_id} refetched"
    outcomes = read_outcomes(tmp_path)
    assert [o.id for o in outcomes] == list(ids)
    assert all(o.status == sample_title(o.id)["status"] for o in outcomes)
    archive = PageArchive(tmp_path)
    records = list(archive.iter_responses(with_bodies=False))
    assert sorted(r.id for r in records) == list(ids)  # the union is complete, no duplicates


def test_real_pages_classify_as_ok(shared_dir):
    pages = sorted((shared_dir / "imdb-pages" / "real").glob("*.html"))
    assert pages
    for page in pages:
        resp = FetchResponse(str(page), 200, {"content-type": "text/html"}, page.read_bytes(), str(page), 1)
        assert classify_response("title", 1, resp) == ("ok", None, None), page.name


def test_an_unreachable_server_stops_the_partition_after_n_ids_without_a_response(tmp_path):
    # A loopback port with nothing accepting on it: every connection is refused, as when
    # the network is down or the base URL is wrong.
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        settings = ClientSettings(
            base_url=base_url, rate_per_second=0, concurrency=2, timeout_s=2.0, max_retries=1, backoff_base_s=0.01
        )
        # With robots.txt obeyed, its missing answer stops the partition before any id (RFC 9309).
        with pytest.raises(CrawlStopped) as excinfo:
            crawl_partition("title", range(1, 201), settings, tmp_path / "robots", max_consecutive_unreachable=4)
        message = str(excinfo.value)
        assert "robots.txt" in message and "unreachable" in message and "MPDS_IMDB_BASE_URL" in message
        assert read_outcomes(tmp_path / "robots") == [] and len(excinfo.value.result.unattempted_ids) == 200
        # Without robots.txt (a host whose policy does not ask it), the ids themselves count.
        settings.obey_robots = False
        with pytest.raises(CrawlStopped) as excinfo:
            crawl_partition("title", range(1, 201), settings, tmp_path, max_consecutive_unreachable=4)
    message = str(excinfo.value)
    assert "unreachable" in message and base_url in message and "MPDS_IMDB_BASE_URL" in message
    outcomes = read_outcomes(tmp_path)  # written before raising
    assert 4 <= len(outcomes) <= 4 + settings.concurrency
    assert all(o.status == "failed" and o.http_status is None for o in outcomes)
    assert len(excinfo.value.result.unattempted_ids) == 200 - len(outcomes)  # left for the next run


def test_ids_without_a_response_between_answered_ones_do_not_stop_the_partition(server, tmp_path):
    resets = frozenset({2, 3, 4, 6, 7, 8, 10, 11, 12})  # runs of 3, each ended by an answered id
    server.set_faults(FaultPlan([FaultRule("reset", ids=resets)]))
    result = crawl_partition(
        "title", range(1, 21), settings_for(server, concurrency=1), tmp_path, max_consecutive_unreachable=4
    )
    failed = {o.id for o in result.outcomes if o.status == "failed" and o.http_status is None}
    assert failed == resets and result.unattempted_ids == [] and result.stopped_reason is None


def test_no_request_leaves_after_the_nth_consecutive_block(server, tmp_path):
    """At 1 request/s with 4 workers, three wait for the rate slot while one is on the
    wire; after the N-th block none of them may send (the issue saw N + 3 arrive)."""
    server.set_faults(FaultPlan([FaultRule("waf", path="^/title/")]))
    settings = settings_for(server, rate_per_second=1, concurrency=4, obey_robots=False)
    with pytest.raises(ImdbBlockingError) as excinfo:
        crawl_partition("title", range(1, 21), settings, tmp_path, max_consecutive_blocks=2)
    assert server.request_count("/title/") == 2
    result = excinfo.value.result
    assert result.requests_made == 2 and sum(o.status == "blocked" for o in result.outcomes) == 2
    assert len(result.unattempted_ids) == 18


def test_progress_is_logged_with_counts_rate_and_eta(server, tmp_path):
    lines: list[str] = []
    crawl_partition("title", range(1, 13), settings_for(server), tmp_path, log=lines.append, label="title_pages p1")
    assert lines[0].startswith("title_pages p1: 1/12 ids (8.3%)") and "ETA" in lines[0]
    final = lines[-1]
    assert final.startswith("title_pages p1: 12/12 ids (100.0%)") and "done in" in final
    counts = {status: n for status, n in read_status_counts(tmp_path).items() if n}
    assert sum(counts.values()) == 12
    for status, n in counts.items():
        assert f"{status} {n}" in final
    lines.clear()
    crawl_partition("title", range(1, 13), settings_for(server), tmp_path, log=lines.append, label="title_pages p1")
    assert lines[0] == "title_pages p1: 12 of 12 ids already archived, 0 to fetch"


def read_status_counts(archive_dir) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(o.status for o in read_outcomes(archive_dir)))


# --- one crawl per partition -----------------------------------------------------------
_HOLD_LOCK = (
    "import sys, time; from pathlib import Path\n"
    "from mpds_pipeline.imdb.archive import partition_lock\n"
    "with partition_lock(Path(sys.argv[1]), run_id='run-abc'):\n"
    "    print('locked', flush=True); time.sleep(60)\n"
)


def test_second_crawl_of_a_partition_fails_fast_naming_the_holder_until_it_dies(server, tmp_path):
    from mpds_pipeline.imdb.archive import PartitionBusy

    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PartitionBusy) as excinfo:
            crawl_partition("title", range(1, 6), settings_for(server), tmp_path)
        message = str(excinfo.value)
        assert f"pid {holder.pid}" in message and "Dagster run run-abc" in message and "since 20" in message
        assert "host " in message and "already being crawled" in message
        assert server.request_count() == 0  # nothing was fetched...
        assert not (tmp_path / "pages.warc.gz").exists()  # ...or written
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
    finally:
        holder.kill()
        holder.wait(timeout=10)
    result = crawl_partition("title", range(1, 6), settings_for(server), tmp_path)
    assert len(result.outcomes) == 5


_ORPHANED_STEP = """
import multiprocessing, sys, time
from pathlib import Path

def step(base_url, archive_dir, log_file):
    from mpds_pipeline.net.client import ClientSettings
    from mpds_pipeline.imdb.crawl import crawl_partition
    from mpds_pipeline.base.parent_watch import parent_gone_check
    # 1 request/s with 4 workers: three of them wait in line for their turn in the window.
    settings = ClientSettings(base_url=base_url, rate_per_second=1, concurrency=4)
    with open(log_file, "a", buffering=1) as out:
        log = lambda message: out.write(f"{time.time()} {message}\\n")
        crawl_partition("title", range(1, 61), settings, Path(archive_dir), should_stop=parent_gone_check(), log=log)

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=step, args=sys.argv[1:4])
    child.start()
    print(child.pid, flush=True)
    child.join()
"""


def process_ended(pid: int) -> bool:
    """Gone, or a zombie: it has exited and only waits for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_step_stops_when_its_run_process_is_killed_and_the_rerun_fetches_each_id_once(server, tmp_path):
    """Dagster's multiprocess executor runs a step in a spawned child of the run process;
    SIGKILL of the run process must not leave the step crawling (nor holding the lock).
    The step ends within one poll: workers waiting for their turn in the rate window
    give up at once, and a stopped client does not wait out the window before closing."""
    from mpds_pipeline.imdb.crawl import STOP_POLL_S

    script = tmp_path / "run_process.py"
    script.write_text(_ORPHANED_STEP)
    archive_dir, log_file = tmp_path / "archive", tmp_path / "step.log"
    run_process = subprocess.Popen(
        [sys.executable, str(script), server.base_url, str(archive_dir), str(log_file)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        step_pid = int(run_process.stdout.readline())
        deadline = time.monotonic() + 30
        while server.request_count("/title/") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(run_process.pid, signal.SIGKILL)
        killed_at, killed_at_wall = time.monotonic(), time.time()
    finally:
        run_process.kill()
        run_process.wait(timeout=10)
    at_kill = server.request_count("/title/")
    deadline = time.monotonic() + 15
    while not process_ended(step_pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    ended_after = time.monotonic() - killed_at
    assert process_ended(step_pid), "the orphaned step is still running"
    # The crawl's last progress line comes as its loop ends. Before, a worker waiting for
    # its turn saw the stop only when its turn came, a window (1 s) after the last send.
    loop_ended = float(log_file.read_text().splitlines()[-1].split()[0])
    assert loop_ended - killed_at_wall < STOP_POLL_S + 0.35, f"the crawl ran {loop_ended - killed_at_wall:.2f} s on"
    assert ended_after < 5, f"the orphaned step took {ended_after:.2f} s to end"
    stopped_at = server.request_count("/title/")
    # Stopped within one poll (0.25 s at 1/s) plus what was on the wire; far from all 60.
    assert stopped_at <= at_kill + 1 < 60

    fetched_by_step = {path for path in server.request_log if path.startswith("/title/")}
    server.clear_log()
    crawl_partition("title", range(1, 61), settings_for(server), archive_dir)  # the lock is free again
    fetched_by_rerun = {path: len(times) for path, times in server.request_log.items() if path.startswith("/title/")}
    assert set(fetched_by_rerun.values()) == {1}
    assert fetched_by_step.isdisjoint(fetched_by_rerun) and len(fetched_by_step) + len(fetched_by_rerun) == 60
    assert sorted(r.id for r in PageArchive(archive_dir).iter_responses(with_bodies=False)) == list(range(1, 61))
