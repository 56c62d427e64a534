"""The ``imdb_requests`` pool's slots: who holds them, and freeing the slots of dead runs.

A run killed with SIGKILL keeps its pool slot, and every later IMDb step waits without
saying why. This judges each holder by the processes that ran it: a dead run of this
host is marked failed and its slots freed; any other is reported with the command that
frees it. When it runs: docs/crawl.md.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

IMDB_POOL = "imdb_requests"  # every step that talks to IMDb or its image CDN
HOST_TAG = "mpds/host"
# Processes started this long after a run recorded their id are another process that
# got the id again: the run's own was started before it was recorded.
PID_START_SLACK_S = 2.0

HolderState = Literal["alive", "dead", "ended", "unknown"]


@dataclass
class SlotHolder:
    pool: str
    run_id: str
    step_key: str
    run_status: str | None  # None: the run is not in this instance any more
    host: str | None
    pids: list[int] = field(default_factory=list)
    state: HolderState = "unknown"
    why: str = ""

    def describe(self) -> str:
        where = f"host {self.host}" if self.host else "host unknown"
        pids = ", ".join(str(p) for p in self.pids) or "none recorded"
        return (
            f"run {self.run_id} (step {self.step_key}, {self.run_status or 'deleted'}, {where}, pid {pids}) "
            f"holds a slot of pool {self.pool}: {self.why}"
        )


def this_host() -> str:
    return socket.gethostname()


def fail_command(run_id: str) -> str:
    return f"mpds pool --fail {run_id}"


def slot_holders(instance, pools: tuple[str, ...] = (IMDB_POOL,)) -> list[SlotHolder]:
    """Every run step holding a slot of ``pools``, with what can be told about its run."""
    holders = []
    for pool in pools:
        for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots:
            holders.append(judge(instance, pool, slot.run_id, slot.step_key))
    return holders


def judge(instance, pool: str, run_id: str, step_key: str) -> SlotHolder:
    """Whether the run holding a slot can still free it itself."""
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return SlotHolder(pool, run_id, step_key, None, None, state="ended", why="the run was deleted")
    run = record.dagster_run
    holder = SlotHolder(pool, run_id, step_key, run.status.value, run.tags.get(HOST_TAG))
    if run.is_finished:
        holder.state, holder.why = "ended", f"the run ended ({run.status.value}) without freeing it"
        return holder
    if holder.host is None and _single_host_storage(instance):
        holder.host = this_host()  # SQLite storage lives on one machine's disk: its runs run there
    processes = _run_processes(instance, run_id)
    holder.pids = sorted({pid for pid, _ in processes})
    if holder.host != this_host():
        holder.why = "it runs on another machine (or says not where): check it there"
        return holder
    if not holder.pids:
        holder.why = "it recorded no process id yet"
        return holder
    if any(_alive(pid, recorded_at) for pid, recorded_at in processes):
        holder.state, holder.why = "alive", "it is running"
    else:
        holder.state, holder.why = "dead", "every process of the run is gone (killed, or the machine restarted)"
    return holder


def free_dead_slots(
    instance, pools: tuple[str, ...] = (IMDB_POOL,), warn: Callable[[str], None] | None = None
) -> list[SlotHolder]:
    """Free the slots of runs that cannot free them any more: ended or deleted runs, and
    runs of this host whose processes are gone (marked failed first). Returns them."""
    freed = []
    for holder in slot_holders(instance, pools):
        if holder.state not in ("dead", "ended"):
            continue
        if holder.state == "dead":
            fail_run(
                instance,
                holder.run_id,
                f"marked failed by mpds: {holder.why}; its slot of pool {holder.pool} was freed",
            )
        instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
        freed.append(holder)
        if warn is not None:
            warn(f"freed the {holder.pool} slot of run {holder.run_id} (step {holder.step_key}): {holder.why}")
    return freed


def fail_run(instance, run_id: str, message: str) -> bool:
    """Mark a run that has not ended as failed (what the UI then shows); False if it had ended."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return False
    instance.report_run_failed(run, message)
    return True


def fail_and_free(instance, run_id: str) -> str:
    """``mpds pool --fail``: for a run someone has checked is gone (another machine's)."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        return f"run {run_id} is not in this instance; freed any slot it held"
    failed = fail_run(
        instance,
        run_id,
        "marked failed by `mpds pool --fail`: its process was reported gone; its pool slots were freed",
    )
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return f"run {run_id}: {'marked failed, ' if failed else ''}pool slots freed"


def waiting_notice(holders: list[SlotHolder]) -> str:
    """What a step waiting for the pool is told: who holds it, and what to do if that is wrong."""
    parts = []
    for holder in holders:
        advice = (
            "it will free the slot when its step ends"
            if holder.state == "alive"
            else f"if that run is gone, free its slot with `{fail_command(holder.run_id)}`"
        )
        parts.append(f"{holder.describe()}; {advice}")
    return "waiting for a slot of pool " + (holders[0].pool if holders else IMDB_POOL) + ": " + " | ".join(parts)


def _single_host_storage(instance) -> bool:
    from .dagster_internals import is_sqlite_event_log

    return is_sqlite_event_log(instance)


def _run_processes(instance, run_id: str) -> list[tuple[int, float]]:
    """(pid, when recorded) of the processes that executed the run: the run worker and its
    executor's orchestrating process (step processes are theirs, and hold no slot)."""
    from dagster import DagsterEventType

    found = []
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or event.step_key is not None:
            continue
        pid = getattr(event.engine_event_data, "metadata", {}).get("pid")
        value = getattr(pid, "value", pid)
        if value is not None and str(value).isdigit():
            found.append((int(value), entry.timestamp))
    return found


def _alive(pid: int, recorded_at: float) -> bool:
    """Whether ``pid`` is a running process that started before the run recorded it."""
    if Path("/proc/self/stat").exists():  # Linux: the process's state and start time
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        if fields[0] in ("Z", "X"):  # a zombie: ended, not yet reaped by its parent
            return False
        return _process_start(int(fields[19])) <= recorded_at + PID_START_SLACK_S
    try:  # no /proc: whether the id is in use at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_start(start_ticks: int) -> float:
    boot = next(
        float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
    )
    return boot + start_ticks / os.sysconf("SC_CLK_TCK")
