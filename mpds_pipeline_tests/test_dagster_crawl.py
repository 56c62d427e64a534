"""The crawl through Dagster itself: definitions load, the CLI materialises a partition
against the sample server, checks pass, and a rerun refetches nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

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


def test_cli_materialises_title_partition_and_rerun_refetches_nothing(dagster_home, tmp_path):
    data_dir = tmp_path / "data"
    with SampleImdbServer() as server:
        env = crawl_env(dagster_home, data_dir, server.base_url)
        register_ranges(env)
        args = ["asset", "materialize", "-m", "mpds_pipeline", "--select", "title_pages,title_records",
                "--partition", "tt0000001-tt0000030"]
        first = run_dagster(args, env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        title_requests = server.request_count("/title/")
        assert title_requests == 30  # one request per id, nothing twice
        assert all(len(times) == 1 for path, times in server.request_log.items() if path.startswith("/title/"))

        records = pq.read_table(data_dir / "crawl" / "title_records" / "tt0000001-tt0000030.parquet").to_pandas()
        assert len(records) > 0
        assert records["id"].is_unique
        assert records["id"].between(1, 30).all()

        outcomes = pq.read_table(data_dir / "crawl" / "title_pages" / "tt0000001-tt0000030" / "outcomes.parquet").to_pandas()
        assert sorted(outcomes["id"]) == list(range(1, 31))
        assert set(outcomes["status"]) <= {"ok", "missing", "redirect"}
        assert (outcomes["status"] == "ok").sum() == len(records)

        second = run_dagster(args, env)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert server.request_count("/title/") == title_requests  # the rerun fetched no page again


def test_blocking_fails_the_run_with_a_clear_message(dagster_home, tmp_path):
    from mpds_pipeline.sample_server import FaultPlan, FaultRule

    data_dir = tmp_path / "data"
    with SampleImdbServer(faults=FaultPlan([FaultRule("waf", path="^/title/")])) as server:
        env = crawl_env(dagster_home, data_dir, server.base_url)
        register_ranges(env)
        completed = run_dagster(
            ["asset", "materialize", "-m", "mpds_pipeline", "--select", "title_pages", "--partition", "tt0000031-tt0000060"],
            env,
        )
    assert completed.returncode != 0
    assert "blocking" in (completed.stdout + completed.stderr).lower()
    outcomes = pq.read_table(data_dir / "crawl" / "title_pages" / "tt0000031-tt0000060" / "outcomes.parquet").to_pandas()
    assert set(outcomes["status"]) == {"blocked"}
    assert len(outcomes) < 30  # the partition stopped: the rest were left unattempted
