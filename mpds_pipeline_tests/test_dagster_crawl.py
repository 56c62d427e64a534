"""The crawl through Dagster itself: definitions load, the CLI materialises a partition
against the sample server, checks pass, and a second run of it refetches nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from mpds_pipeline.imdb.archive import PageArchive
from mpds_pipeline.sample_server import SampleImdbServer

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
MPDS = str(Path(sys.executable).with_name("mpds"))


def crawl_env(dagster_home: Path, data_dir: Path, base_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "MPDS_DATA_DIR": str(data_dir),
        "MPDS_IMDB_BASE_URL": base_url,
        "MPDS_TITLE_IDS": "1-60",
        "MPDS_PERSON_IDS": "1-30",
        "MPDS_PARTITION_SIZE": "30",
        "MPDS_RATE": "50",
        "MPDS_BACKOFF_BASE_S": "0.05",
    }


def run_dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([DAGSTER, *args], env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


def register_ranges(env: dict[str, str]) -> None:
    done = subprocess.run([MPDS, "ranges"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_definitions_validate(dagster_home, tmp_path):
    env = {**os.environ, "MPDS_DATA_DIR": str(tmp_path)}
    completed = run_dagster(["definitions", "validate", "-m", "mpds_pipeline"], env)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_two_concurrent_runs_of_a_partition_fetch_each_id_once(dagster_home, tmp_path):
    """The bundled dagster.yaml limits the imdb_requests pool to one step at a time: a
    second run of the partition, started while the first crawls, waits for the slot and
    then finds everything archived. Nothing is fetched twice, the archive stays whole."""
    data_dir = tmp_path / "data"
    with SampleImdbServer() as server:
        # 2 requests/s: the first run's crawl outlasts the second run's start-up.
        env = {**crawl_env(dagster_home, data_dir, server.base_url), "MPDS_RATE": "2"}
        register_ranges(env)
        args = [
            "asset",
            "materialize",
            "-m",
            "mpds_pipeline",
            "--select",
            "title_pages,title_records",
            "--partition",
            "tt0000001-tt0000030",
        ]
        first = subprocess.Popen(
            [DAGSTER, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT
        )
        try:
            deadline = time.monotonic() + 120
            while server.request_count("/title/") == 0 and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            second = run_dagster([*args[:5], "title_pages", *args[6:]], env)  # its records step adds nothing here
            first_out, _ = first.communicate(timeout=300)
        finally:
            first.kill()
        assert first.returncode == 0, first_out[-3000:]
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "Step blocked by limit for pool imdb_requests" in second.stdout + second.stderr
        title_log = {path: times for path, times in server.request_log.items() if path.startswith("/title/")}
        assert len(title_log) == 30 and all(len(times) == 1 for times in title_log.values())
        assert server.max_requests_in_any_window(1.0) <= 2

    archived = PageArchive(data_dir / "crawl" / "title_pages" / "tt0000001-tt0000030").iter_responses(with_bodies=False)
    assert sorted(r.id for r in archived) == list(range(1, 31))
    records = pq.read_table(data_dir / "crawl" / "title_records" / "tt0000001-tt0000030.parquet").to_pandas()
    assert len(records) > 0
    assert records["id"].is_unique
    assert records["id"].between(1, 30).all()

    outcomes = pq.read_table(
        data_dir / "crawl" / "title_pages" / "tt0000001-tt0000030" / "outcomes.parquet"
    ).to_pandas()
    assert sorted(outcomes["id"]) == list(range(1, 31))
    assert set(outcomes["status"]) <= {"ok", "missing", "redirect"}
    assert (outcomes["status"] == "ok").sum() == len(records)
    assert "title_pages tt0000001-tt0000030: 30/30 ids (100.0%)" in first_out  # progress at INFO


def test_blocking_fails_the_run_with_a_clear_message(dagster_home, tmp_path):
    from mpds_pipeline.sample_server import FaultPlan, FaultRule

    data_dir = tmp_path / "data"
    with SampleImdbServer(faults=FaultPlan([FaultRule("waf", path="^/title/")])) as server:
        env = crawl_env(dagster_home, data_dir, server.base_url)
        register_ranges(env)
        completed = run_dagster(
            [
                "asset",
                "materialize",
                "-m",
                "mpds_pipeline",
                "--select",
                "title_pages",
                "--partition",
                "tt0000031-tt0000060",
            ],
            env,
        )
    assert completed.returncode != 0
    assert "blocking" in (completed.stdout + completed.stderr).lower()
    outcomes = pq.read_table(
        data_dir / "crawl" / "title_pages" / "tt0000031-tt0000060" / "outcomes.parquet"
    ).to_pandas()
    assert set(outcomes["status"]) == {"blocked"}
    assert len(outcomes) < 30  # the partition stopped: the rest were left unattempted


def test_a_crawl_of_an_unregistered_range_is_refused_before_any_request(dagster_home, tmp_path):
    """A partition key passed as a run tag is not checked by Dagster: the crawl step
    refuses a range the instance never registered (a typo would otherwise crawl it)."""
    with SampleImdbServer() as server:
        env = crawl_env(dagster_home, tmp_path / "data", server.base_url)
        register_ranges(env)  # tt0000001-tt0000030 and tt0000031-tt0000060
        tags = '{"dagster/partition": "tt0000061-tt0000090"}'
        done = run_dagster(["job", "execute", "-m", "mpds_pipeline", "-j", "title_crawl", "--tags", tags], env)
        assert done.returncode != 0
        output = done.stdout + done.stderr
        assert "tt0000061-tt0000090 is not a registered title id range" in output
        assert "mpds ranges" in output
        assert server.request_count("/") == 0


def _step_processes(run_pid: int) -> list[int]:
    """The multiprocess executor's step processes: spawned children of the run process."""
    steps = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if parent == run_pid and "spawn_main" in command:
            steps.append(int(proc.name))
    return steps


def test_the_step_of_a_killed_run_exits_within_a_poll_and_says_why(dagster_home, tmp_path):
    """SIGKILL of the run process: its crawl step stops sending, writes what it fetched,
    logs why to the run's event log and exits at once, instead of spending seconds on
    events for a run process that is gone."""
    from dagster import DagsterInstance

    from mpds_pipeline.base.parent_watch import ORPHANED_STEP_EXIT_CODE
    from mpds_pipeline_tests.test_crawl import process_ended

    data_dir = tmp_path / "data"
    with SampleImdbServer() as server:
        env = {**crawl_env(dagster_home, data_dir, server.base_url), "MPDS_RATE": "2"}
        register_ranges(env)
        args = ["asset", "materialize", "-m", "mpds_pipeline", "--select", "title_pages"]
        run = subprocess.Popen(
            [DAGSTER, *args, "--partition", "tt0000001-tt0000030"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while server.request_count("/title/") < 2 and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            (step,) = _step_processes(run.pid)
            os.kill(run.pid, signal.SIGKILL)
            killed_at = time.monotonic()
        finally:
            run.kill()
            run.wait(timeout=10)
        at_kill = server.request_count("/title/")
        while not process_ended(step) and time.monotonic() < killed_at + 15:
            time.sleep(0.01)
        ended_after = time.monotonic() - killed_at
        assert process_ended(step), "the orphaned step is still running"
        assert server.request_count("/title/") <= at_kill + 1
    # Before: about 2-3 s after the kill (Dagster's failure events, a window's wait).
    assert ended_after < 1.5, f"the orphaned step took {ended_after:.2f} s to exit"
    with DagsterInstance.get() as instance:
        (record,) = instance.get_run_records()
        messages = [entry.user_message for entry in instance.all_logs(record.dagster_run.run_id)]
    assert any(
        "run process" in m and "has died" in m and f"exits now (status {ORPHANED_STEP_EXIT_CODE})" in m
        for m in messages
    )
    archived = PageArchive(data_dir / "crawl" / "title_pages" / "tt0000001-tt0000030").archived_ids("title")
    assert 2 <= len(archived) <= at_kill + 1
