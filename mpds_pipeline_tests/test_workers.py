"""The worker-process helper (base/workers.py), with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mpds_pipeline.base.workers import ORPHAN_GRACE_S, WorkerError, Workers

HANDLERS = "mpds_pipeline_tests.worker_handlers"
REPO = Path(__file__).resolve().parents[1]


def process_ended(pid: int) -> bool:
    """Gone, or a zombie: it has exited and only waits for its parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def wait_ended(pids, timeout_s: float) -> float:
    start = time.monotonic()
    while not all(process_ended(pid) for pid in pids) and time.monotonic() - start < timeout_s:
        time.sleep(0.02)
    return time.monotonic() - start


def test_results_in_order_or_as_they_come_from_several_processes():
    with Workers(f"{HANDLERS}:square", 2, setup=1) as pool:
        ordered = list(pool.map(range(30), ordered=True))
        unordered = list(pool.map(range(30)))
    assert [value for value, _ in ordered] == [n * n + 1 for n in range(30)]
    assert sorted(value for value, _ in unordered) == [n * n + 1 for n in range(30)]
    assert len({pid for _, pid in ordered}) == 2 and os.getpid() not in {pid for _, pid in ordered}


def test_the_task_queue_is_bounded(tmp_path):
    """Tasks are read only as workers free up: however long the list, at most
    workers x per_worker are ever taken and not yet answered."""
    gate = tmp_path / "gate"
    pulled, answered, most_ahead = [0], [0], [0]
    started: list[int] = []

    def tasks():
        for n in range(40):
            pulled[0] += 1
            most_ahead[0] = max(most_ahead[0], pulled[0] - answered[0])
            yield n

    def on_message(message):
        started.append(message[1])
        if len(started) == 2:  # both workers are busy: nothing is answered yet
            assert pulled[0] == 2 * 2
            gate.touch()

    with Workers(f"{HANDLERS}:wait_for_gate", 2, setup=str(gate), per_worker=2) as pool:
        for _ in pool.map(tasks(), on_message=on_message):
            answered[0] += 1
    assert answered[0] == 40 and most_ahead[0] <= 2 * 2


def test_a_worker_exception_is_raised_with_its_traceback():
    with pytest.raises(WorkerError) as excinfo, Workers(f"{HANDLERS}:square", 2, label="square") as pool:
        list(pool.map([1, 2, -3, 4]))
    message = str(excinfo.value)
    assert "square worker" in message and "failed on task 2" in message
    assert "Traceback" in message and "ValueError: bad task -3" in message and "worker_handlers.py" in message


def test_a_worker_that_dies_is_an_error_with_its_exit_code():
    expected = pytest.raises(WorkerError, match="exited with 7 before its tasks were done")
    with expected, Workers(f"{HANDLERS}:exit_on", 1, setup=7) as pool:
        list(pool.map(range(5)))


def test_a_handler_that_cannot_start_says_so():
    expected = pytest.raises(WorkerError, match="(?s)failed to start.*RuntimeError: no model here")
    with expected, Workers(f"{HANDLERS}:broken_start", 1) as pool:
        list(pool.map([1]))


def test_stop_lets_running_tasks_finish_and_skips_the_rest():
    pids: list[int] = []
    with Workers(f"{HANDLERS}:until_stopped", 2, per_worker=3) as pool:

        def on_message(pid):
            pids.append(pid)
            pool.stop()

        results = list(pool.map(range(10), ordered=True, on_message=on_message))
    # The tasks running when stop came finished; those queued in the workers were skipped.
    assert 1 <= len(results) <= 2 and set(results) <= {0, 1}
    assert all(process_ended(pid) for pid in pids)


def test_leaving_early_kills_workers_busy_with_a_long_task():
    """An exception in the parent (a run being terminated raises one in the step) ends
    the workers even when their handler never looks at ``stop``."""
    pids: list[int] = []

    def on_message(pid):
        pids.append(pid)
        if len(pids) == 2:
            raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Workers(f"{HANDLERS}:until_stopped", 2, setup="ignore") as pool:
        list(pool.map(range(4), on_message=on_message))
    assert all(process_ended(pid) for pid in pids) and len(pids) == 2
    assert time.monotonic() - start < 30


_PARENT = """
import sys
from mpds_pipeline.base.workers import Workers

with Workers("mpds_pipeline_tests.worker_handlers:until_stopped", 2, setup=sys.argv[1]) as pool:
    for _ in pool.map(range(2), on_message=lambda pid: print(pid, flush=True)):
        pass
"""


@pytest.mark.parametrize("setup", ["watch", "ignore"])
def test_workers_of_a_killed_parent_end(tmp_path, setup):
    """SIGKILL of the parent (the run process, or a step's) runs no cleanup: a worker
    sees its stdin close and stops, and one busy in a long call exits after a grace."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(_PARENT))
    parent = subprocess.Popen([sys.executable, str(script), setup], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(parent.stdout.readline()), int(parent.stdout.readline())]
        os.kill(parent.pid, signal.SIGKILL)
    finally:
        parent.kill()
        parent.wait(timeout=10)
    ended_after = wait_ended(pids, ORPHAN_GRACE_S + 15)
    assert all(process_ended(pid) for pid in pids), "a worker outlived its parent"
    if setup == "watch":
        assert ended_after < ORPHAN_GRACE_S, f"a worker that watches stop took {ended_after:.1f} s"
