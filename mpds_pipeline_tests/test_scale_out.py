"""The production profile for real: PostgreSQL instance storage, the run queue, the
``imdb_requests`` pool, and a crawl backfill spread over two Celery workers on Redis.

Everything runs as it would in production, on loopback: the instance is
deploy/dagster.postgres.yaml as shipped, runs are queued by ``dagster job backfill`` and
launched by ``dagster-daemon``, steps go through Redis to two ``dagster-celery`` workers,
and the sample IMDb server counts what arrives.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mpds_pipeline.sample_server import SampleImdbServer

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
PRODUCTION_PROFILE = REPO_ROOT / "deploy" / "dagster.postgres.yaml"
WORKER_CONFIG = REPO_ROOT / "deploy" / "celery.yaml"
CODE_LOCATION = "mpds_pipeline.definitions"
CELERY_JOB = "crawl_backfill_celery"
RATE_PER_S = 20
PARTITIONS = ["tt0000001-tt0000030", "tt0000031-tt0000060", "tt0000061-tt0000090", "tt0000091-tt0000120"]
BACKFILL_TIMEOUT_S = 150


def production_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(PRODUCTION_PROFILE.read_text())
    return home


def pipeline_env(
    home: Path, data_dir: Path, base_url: str, postgres_env: dict[str, str], **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        **postgres_env,
        **extra,
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery calls `celery`
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "MPDS_DATA_DIR": str(data_dir),
        "MPDS_IMDB_BASE_URL": base_url,
        "MPDS_TITLE_IDS": "1-120",
        "MPDS_PERSON_IDS": "1-30",
        "MPDS_PARTITION_SIZE": "30",
        "MPDS_RATE": str(RATE_PER_S),
        "MPDS_BACKOFF_BASE_S": "0.05",
    }


def run_cli(args: list[str], env: dict[str, str], timeout_s: float = 180) -> subprocess.CompletedProcess:
    completed = subprocess.run(args, env=env, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout_s)
    assert completed.returncode == 0, f"{args} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed


def register_ranges(env: dict[str, str]) -> None:
    """The crawl's id ranges are dynamic partitions: register the configured ones."""
    run_cli([str(BIN_DIR / "mpds"), "ranges"], env)


def query(postgres, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(postgres.url(database))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def test_postgres_instance_stores_the_run_and_its_materialisations(postgres_server, tmp_path):
    database = postgres_server.create_database("mpds_storage_test")
    home = production_home(tmp_path)
    with SampleImdbServer() as server:
        env = pipeline_env(home, tmp_path / "data", server.base_url, postgres_server.env(database))
        register_ranges(env)
        # In-process executor: the storage is under test here, not the step processes (fast on 2 cores).
        run_cli(
            [
                str(BIN_DIR / "dagster"),
                "asset",
                "materialize",
                "-m",
                CODE_LOCATION,
                "--select",
                "title_pages,title_records",
                "--partition",
                PARTITIONS[0],
                "--config-json",
                '{"execution": {"config": {"in_process": {}}}}',
            ],
            env,
        )

    runs = query(postgres_server, database, "SELECT run_id, status FROM runs")
    assert [status for _, status in runs] == ["SUCCESS"]
    materialised = query(
        postgres_server,
        database,
        "SELECT asset_key, partition FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND run_id = %s",
        (runs[0][0],),
    )
    assert sorted(materialised) == [('["title_pages"]', PARTITIONS[0]), ('["title_records"]', PARTITIONS[0])]
    # Nothing went to SQLite: the profile put every store in Postgres.
    assert not list(home.glob("**/*.db"))


class Workers:
    """Two dagster-celery workers, each a separate process tree with its own node name."""

    def __init__(self, env: dict[str, str], log_dir: Path, names: tuple[str, ...] = ("worker-a", "worker-b")):
        self.names = names
        self.nodes = {f"{name}@{socket.gethostname()}" for name in names}
        self.processes = []
        for name in names:
            log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            command = [
                str(BIN_DIR / "dagster-celery"),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(WORKER_CONFIG),
                "--name",
                name,
                "--",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
            ]
            self.processes.append(
                (
                    subprocess.Popen(
                        command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    ),
                    log,
                )
            )

    def wait_ready(self, broker_url: str, timeout_s: float = 60) -> None:
        from celery import Celery

        app = Celery(broker=broker_url)
        deadline = time.monotonic() + timeout_s
        answered: set[str] = set()
        while time.monotonic() < deadline:
            for process, _ in self.processes:
                assert process.poll() is None, "a celery worker exited at start-up: see its log"
            answered |= {node for reply in app.control.ping(timeout=0.5) for node in reply}
            if self.nodes <= answered:
                return
        raise TimeoutError(f"workers {sorted(self.nodes - answered)} did not answer a ping within {timeout_s}s")

    def stop(self) -> None:
        for process, _log in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)  # the worker's own session: the celery parent and its pool child
        for process, log in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
            log.close()


def wait_for_runs(instance, count: int, timeout_s: float) -> list:
    from dagster import DagsterRunStatus

    finished = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if len(runs) >= count and all(run.status in finished for run in runs):
            return runs
        time.sleep(0.5)
    statuses = {run.run_id[:8]: run.status.value for run in instance.get_runs()}
    raise TimeoutError(f"runs not finished after {timeout_s}s: {statuses}")


def workers_by_step(instance, run_id: str) -> dict[str, str]:
    """step key -> the Celery node that ran it, from the run's engine events."""
    executed = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.is_engine_event:
            continue
        metadata = event.engine_event_data.metadata or {}
        if "Celery worker" in metadata:
            executed[event.step_key] = metadata["Celery worker"].value
    return executed


def test_celery_backfill_spreads_partitions_over_two_workers_within_the_rate(
    postgres_server, redis_server, tmp_path, monkeypatch
):
    from mpds_pipeline.definitions import defs

    job_names = {job.name for job in defs.jobs or []}
    if CELERY_JOB not in job_names:
        pytest.fail(
            f"job {CELERY_JOB!r} is not in the code location: "
            "add mpds_pipeline.defs.scaling.scaling_jobs to Definitions(jobs=...)"
        )
    database = postgres_server.create_database("mpds_celery_test")
    home = production_home(tmp_path)
    data_dir = tmp_path / "data"
    broker = redis_server.url(0)

    with SampleImdbServer() as server:
        env = pipeline_env(
            home,
            data_dir,
            server.base_url,
            postgres_server.env(database),
            MPDS_CELERY_BROKER=broker,
            MPDS_CELERY_BACKEND=broker,
        )
        for key, value in postgres_server.env(database).items():
            monkeypatch.setenv(key, value)
        from dagster import DagsterInstance

        register_ranges(env)
        run_cli([str(BIN_DIR / "dagster"), "instance", "concurrency", "set", "imdb_requests", "1"], env)
        workers = Workers(env, tmp_path)
        daemon = None
        try:
            workers.wait_ready(broker)
            run_cli(
                [
                    str(BIN_DIR / "dagster"),
                    "job",
                    "backfill",
                    "-m",
                    CODE_LOCATION,
                    "-j",
                    CELERY_JOB,
                    "--partitions",
                    ",".join(PARTITIONS),
                    "--noprompt",
                ],
                env,
            )
            with (tmp_path / "daemon.log").open("w") as daemon_log:
                daemon = subprocess.Popen(
                    [str(BIN_DIR / "dagster-daemon"), "run", "-m", CODE_LOCATION],
                    env=env,
                    cwd=REPO_ROOT,
                    stdout=daemon_log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                with DagsterInstance.from_config(str(home)) as instance:
                    runs = wait_for_runs(instance, len(PARTITIONS), BACKFILL_TIMEOUT_S)
                    executed = {run.tags["dagster/partition"]: workers_by_step(instance, run.run_id) for run in runs}
                    statuses = {run.tags["dagster/partition"]: run.status.value for run in runs}
        finally:
            if daemon is not None and daemon.poll() is None:
                os.killpg(daemon.pid, 15)
                daemon.wait(timeout=30)
            workers.stop()
        max_in_window = server.max_requests_in_any_window(seconds=1.0, path_prefix="/title/")
        title_requests = sorted(
            (record.t, int(record.path.rstrip("/")[-7:]))
            for record in server.requests
            if record.path.startswith("/title/")
        )

    assert statuses == {key: "SUCCESS" for key in PARTITIONS}, (tmp_path / "daemon.log").read_text()[-3000:]
    # Every step ran on a Celery worker, and both workers took a share.
    for partition, steps in executed.items():
        assert {"title_pages", "title_records"} <= set(steps), (partition, steps)  # and the asset checks
    used = {node for steps in executed.values() for node in steps.values()}
    assert used == workers.nodes, executed

    # Nothing lost or duplicated: each id has exactly one status, in exactly one partition.
    outcome_ids, record_ids, ok = [], [], 0
    for partition in PARTITIONS:
        outcomes = pq.read_table(data_dir / "crawl" / "title_pages" / partition / "outcomes.parquet").to_pandas()
        outcome_ids += outcomes["id"].tolist()
        ok += int((outcomes["status"] == "ok").sum())
        record_ids += (
            pq.read_table(data_dir / "crawl" / "title_records" / f"{partition}.parquet", columns=["id"])
            .column("id")
            .to_pylist()
        )
    assert sorted(outcome_ids) == list(range(1, 121))
    assert len(record_ids) == len(set(record_ids)) == ok
    assert sorted(title_id for _, title_id in title_requests) == list(range(1, 121))  # each page fetched once

    # The imdb_requests pool (limit 1) let one crawl step talk to IMDb at a time:
    # the partitions' requests arrived in separate blocks, never interleaved.
    blocks = [(title_id - 1) // 30 for _, title_id in title_requests]
    changes = [i for i in range(1, len(blocks)) if blocks[i] != blocks[i - 1]]
    assert len(changes) == len(PARTITIONS) - 1, f"crawl steps overlapped: partition order {blocks}"
    gaps = [round(title_requests[i][0] - title_requests[i - 1][0], 2) for i in changes]

    # The politeness budget held across all runs and workers, as the server counted.
    assert max_in_window <= RATE_PER_S, f"{max_in_window} title requests in one second, limit {RATE_PER_S}"
    print(
        f"\nworkers per partition: {executed}\n"
        f"most /title/ requests in any 1 s window: {max_in_window} (limit {RATE_PER_S}); "
        f"gaps between partitions: {gaps} s"
    )
