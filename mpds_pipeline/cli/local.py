"""One data directory, one Dagster instance: how the ``mpds`` commands find both.

The data directory is ``--data-dir``, else ``$MPDS_DATA_DIR``, else ``./data``. Its runs
are recorded in ``<data dir>/.dagster`` (unless ``$DAGSTER_HOME`` names another
instance), and its ``settings.env`` holds the settings its runs use (see
``settings.py``). ``mpds ui`` starts ``dagster dev`` on that pair, so the UI, the daemon's
rectifications sensor and the runs it launches all use the folder that ``mpds review``
saves to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ..base.layout import DATA_DIR_ENV, DataLayout, dagster_config_file, default_data_dir

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"
# A launched run still queued after this long waits for a daemon that is not there.
QUEUED_PATIENCE_S = 60.0
# How often a followed run's wait for the IMDb pool is checked for a dead slot holder.
POOL_CHECK_S = 10.0


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    return Path(data_dir).resolve() if data_dir else default_data_dir()


def ensure_instance(home: Path, replace: bool = False) -> Path:
    """A Dagster home with the project's instance config: copied once and then left as
    the user may have edited it, unless ``replace`` (the demo's own instance)."""
    home.mkdir(parents=True, exist_ok=True)
    config = dagster_config_file(home)
    if replace or not config.exists():
        if not REPO_DAGSTER_YAML.is_file():  # a package installed without its repository
            raise FileNotFoundError(
                f"no dagster.yaml at {REPO_DAGSTER_YAML} to copy into {home}: run from a checkout of the repository"
            )
        shutil.copyfile(REPO_DAGSTER_YAML, config)
    return home


def instance_environment(
    data_dir: Path, base: dict[str, str] | None = None, own_instance: bool = False
) -> dict[str, str]:
    """The environment for Dagster commands over ``data_dir``: its path, its instance,
    telemetry off. ``own_instance``: always ``<data dir>/.dagster``, with the project's
    instance config (the demo's)."""
    env = dict(os.environ if base is None else base)
    home = (
        Path(env["DAGSTER_HOME"]) if env.get("DAGSTER_HOME") and not own_instance else DataLayout(data_dir).dagster_home
    )
    ensure_instance(home, replace=own_instance)
    env.update({DATA_DIR_ENV: str(data_dir), "DAGSTER_HOME": str(home), "DAGSTER_DISABLE_TELEMETRY": "1"})
    return env


def venv_command(name: str) -> str:
    """A console script of this environment (``dagster``, ``mpds``), else from PATH."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def ui_command(host: str, port: int) -> list[str]:
    return [venv_command("dagster"), "dev", "-m", "mpds_pipeline", "-h", host, "-p", str(port)]


def run_ui(data_dir: str | None, host: str, port: int) -> int:
    """Replace this process with ``dagster dev`` over the data directory's instance."""
    root = resolve_data_dir(data_dir)
    env = instance_environment(root)
    print(f"mpds ui: data in {root}, runs in {env['DAGSTER_HOME']}; http://{host}:{port} (Ctrl+C stops)", flush=True)
    if not root.exists():
        print(
            f"mpds ui: {root} does not exist yet (after `make demo` the demo's data is data/demo: "
            f"pass --data-dir data/demo or set {DATA_DIR_ENV})",
            file=sys.stderr,
            flush=True,
        )
    command = ui_command(host, port)
    os.execvpe(command[0], command, env)
    return 0  # not reached


def job_command(verb: str, job: str, partition: str | None = None, config: Path | None = None) -> list[str]:
    """``dagster job <verb> -m mpds_pipeline -j <job>`` with a partition tag and a config file."""
    command = ["dagster", "job", verb, "-m", "mpds_pipeline", "-j", job]
    if partition:
        command += ["--tags", json.dumps({"dagster/partition": partition})]
    if config:
        command += ["-c", str(config)]
    return command


@contextlib.contextmanager
def _dagster_home(home: str) -> Iterator[None]:
    """``$DAGSTER_HOME`` set for a while: the instance's config reads it."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = home
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


class RunFailed(RuntimeError):
    """A launched run ended in any state but success."""


def launch_and_follow(
    command: list[str], env: dict[str, str], echo: Callable[[str], None] = print, poll_s: float = 0.5
) -> str:
    """Run a ``dagster job launch`` command, then wait for its run to end, echoing the
    run's INFO lines (the steps' progress) as they come; returns the run id.

    Launched, not executed: a launched run is recorded with its code location, which is
    what the Overview page's timeline lists (an executed run is only under Runs). While it
    runs, the IMDb pool's slots held by dead runs are freed (pool_slots.py), with a warning.
    """
    from dagster import DagsterInstance, DagsterRunStatus

    from ..defs.pool_slots import free_dead_slots

    run_id = str(uuid.uuid4())
    launched = subprocess.run(
        [venv_command(command[0]), *command[1:], "--run-id", run_id], env=env, capture_output=True, text=True
    )
    if launched.returncode != 0:
        raise RunFailed(f"{' '.join(command)} exited with {launched.returncode}:\n{launched.stderr[-3000:]}")
    with _dagster_home(env["DAGSTER_HOME"]), DagsterInstance.get() as instance:
        cursor, errors, launched_at = None, [], time.monotonic()
        pool_checked = launched_at
        while True:
            run = instance.get_run_by_id(run_id)
            finished = run is not None and run.is_finished
            if (
                run is not None
                and run.status == DagsterRunStatus.QUEUED
                and time.monotonic() - launched_at > QUEUED_PATIENCE_S
            ):
                raise RunFailed(
                    f"run {run_id} is still queued after {QUEUED_PATIENCE_S:.0f} s: this instance queues runs "
                    "for a daemon that is not running (start one with `mpds ui`, or use the bundled dagster.yaml)"
                )
            page = instance.get_records_for_run(run_id, cursor=cursor)
            cursor = page.cursor
            for record in page.records:
                entry = record.event_log_entry
                if entry.dagster_event is None and entry.level == logging.INFO:
                    echo(f"  {entry.user_message}")
                elif entry.dagster_event is not None and entry.dagster_event.is_step_failure:
                    error = entry.dagster_event.step_failure_data.error
                    errors.append(error.to_string() if error else entry.message or "")
                elif entry.dagster_event is not None and entry.dagster_event.is_run_failure:
                    errors.append(entry.message or "")
            if finished and not page.has_more:
                break
            if time.monotonic() - pool_checked > POOL_CHECK_S:
                free_dead_slots(instance, warn=lambda message: echo(f"  WARNING: {message}"))
                pool_checked = time.monotonic()
            time.sleep(poll_s)
        if run.status != DagsterRunStatus.SUCCESS:
            raise RunFailed(f"run {run_id} of {run.job_name} ended {run.status.value}:\n" + "\n".join(errors)[-4000:])
    return run_id


def run_pool(data_dir: str | None, fail_run_ids: list[str], echo: Callable[[str], None] = print) -> int:
    """``mpds pool``: the imdb_requests pool's holders and waiting runs; frees the slots of
    dead runs of this machine, and of the runs named with ``--fail``."""
    from dagster import DagsterInstance

    from ..defs.pool_slots import IMDB_POOL, fail_and_free, free_dead_slots, slot_holders

    env = instance_environment(resolve_data_dir(data_dir))
    with _dagster_home(env["DAGSTER_HOME"]), DagsterInstance.get() as instance:
        for run_id in fail_run_ids:
            echo(fail_and_free(instance, run_id))
        for holder in free_dead_slots(instance):
            echo(f"WARNING: freed: {holder.describe()}")
        info = instance.event_log_storage.get_concurrency_info(IMDB_POOL)
        waiting = sorted({step.run_id for step in info.pending_steps if step.assigned_timestamp is None})
        holders = slot_holders(instance)
        echo(f"pool {IMDB_POOL}: {len(holders)} of {info.slot_count} slot(s) held, {len(waiting)} run(s) waiting")
        for holder in holders:
            echo(f"  {holder.describe()}")
            if holder.state != "alive":
                echo(f"  if that run is gone: mpds pool --fail {holder.run_id}")
    return 0
