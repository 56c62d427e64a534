"""A run killed with SIGKILL keeps its imdb_requests slot; the next run of the machine
takes it back (marking the dead run failed, at WARNING), and a holder that cannot be
judged here is named with the command that frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun

from mpds_pipeline.cli.local import run_pool
from mpds_pipeline.defs import pool_slots
from mpds_pipeline.defs.pool_slots import (
    HOST_TAG,
    IMDB_POOL,
    fail_and_free,
    free_dead_slots,
    slot_holders,
    waiting_notice,
)
from mpds_pipeline.sample_server import SampleImdbServer

from .test_dagster_crawl import DAGSTER, REPO_ROOT, crawl_env, register_ranges, run_dagster


def started_run(instance, pid: int, tags: dict | None = None) -> DagsterRun:
    """A run as a run worker leaves it: STARTED, its process id recorded, a slot claimed."""
    run = instance.add_run(
        DagsterRun(job_name="title_crawl", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED, tags=tags or {})
    )
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    assert instance.event_log_storage.claim_concurrency_slot(IMDB_POOL, run.run_id, "title_pages").is_claimed
    return run


def gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def instance(dagster_home):
    with DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(IMDB_POOL, 1)
        yield instance


def test_a_dead_holder_is_failed_and_freed_a_live_one_kept(instance):
    dead = started_run(instance, gone_pid())
    (holder,) = slot_holders(instance)
    assert (holder.run_id, holder.state, holder.pids) == (dead.run_id, "dead", [holder.pids[0]])
    warnings = []
    assert [h.run_id for h in free_dead_slots(instance, warn=warnings.append)] == [dead.run_id]
    assert warnings and dead.run_id in warnings[0] and "every process of the run is gone" in warnings[0]
    assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
    assert slot_holders(instance) == []

    alive = started_run(instance, os.getpid())
    assert free_dead_slots(instance) == [] and [h.state for h in slot_holders(instance)] == ["alive"]
    assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED


def test_a_holder_of_another_machine_is_named_with_the_command(instance):
    elsewhere = started_run(instance, gone_pid(), tags={HOST_TAG: "crawler-7"})
    assert free_dead_slots(instance) == []  # a pid of another machine says nothing here
    (holder,) = slot_holders(instance)
    assert holder.state == "unknown" and holder.host == "crawler-7"
    assert f"mpds pool --fail {elsewhere.run_id}" in waiting_notice([holder])
    assert "marked failed" in fail_and_free(instance, elsewhere.run_id)
    assert slot_holders(instance) == [] and instance.get_run_by_id(elsewhere.run_id).status == DagsterRunStatus.FAILURE


def test_a_run_that_ended_without_freeing_is_freed(instance):
    run = started_run(instance, os.getpid())
    instance.report_run_failed(run, "ended")
    (holder,) = slot_holders(instance)
    assert holder.state == "ended"
    assert [h.run_id for h in free_dead_slots(instance)] == [run.run_id] and slot_holders(instance) == []


def test_process_checks():
    assert pool_slots._alive(os.getpid(), time.time())
    # The same id recorded long before this process started: an id taken again.
    assert not pool_slots._alive(os.getpid(), time.time() - 10**6)
    assert not pool_slots._alive(gone_pid(), time.time())
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    stat = Path(f"/proc/{zombie.pid}/stat")
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pool_slots._alive(zombie.pid, time.time())  # ended, not yet reaped
    zombie.wait()


def test_mpds_pool_reports_and_frees(instance, tmp_path, capsys):
    dead = started_run(instance, gone_pid())
    lines = []
    assert run_pool(str(tmp_path), [], echo=lines.append) == 0
    assert lines[0].startswith("WARNING: freed: run " + dead.run_id)
    assert lines[1] == f"pool {IMDB_POOL}: 0 of 1 slot(s) held, 0 run(s) waiting"


def test_the_next_run_takes_back_the_slot_of_a_killed_run(dagster_home, tmp_path):
    """For real: a crawl run SIGKILLed mid-partition keeps the slot (the README's
    scenario); the next crawl run frees it at its start, says so at WARNING, and completes."""
    data_dir = tmp_path / "data"
    with SampleImdbServer() as server:
        env = {**crawl_env(dagster_home, data_dir, server.base_url), "MPDS_RATE": "2"}
        register_ranges(env)
        args = ["asset", "materialize", "-m", "mpds_pipeline", "--select", "title_pages", "--partition"]
        first = subprocess.Popen(
            [DAGSTER, *args, "tt0000001-tt0000030"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while server.request_count("/title/") == 0 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        with DagsterInstance.get() as instance:
            (holder,) = slot_holders(instance)
            assert holder.state == "dead" and holder.run_status == "STARTED"

        second = run_dagster([*args, "tt0000031-tt0000060"], env)

    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert f"freed the {IMDB_POOL} slot of run {holder.run_id}" in output and "WARNING" in output
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(holder.run_id).status == DagsterRunStatus.FAILURE
        assert slot_holders(instance) == []


def test_the_daemon_sensor_frees_and_tells_waiting_runs(instance):
    import logging

    from dagster import build_sensor_context

    from mpds_pipeline.defs.assets.pools import imdb_pool_watch

    holder = started_run(instance, gone_pid(), tags={HOST_TAG: "crawler-7"})
    waiting = instance.add_run(
        DagsterRun(job_name="title_crawl", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
    )
    assert not instance.event_log_storage.claim_concurrency_slot(IMDB_POOL, waiting.run_id, "title_pages").is_claimed

    context = build_sensor_context(instance=instance)
    imdb_pool_watch(context)
    imdb_pool_watch(build_sensor_context(instance=instance, cursor=context.cursor))  # told once, not again
    told = [
        r.event_log_entry
        for r in instance.get_records_for_run(waiting.run_id).records
        if r.event_log_entry.dagster_event is None
    ]
    assert len(told) == 1 and told[0].level == logging.WARNING
    assert f"mpds pool --fail {holder.run_id}" in told[0].user_message and "crawler-7" in told[0].user_message
