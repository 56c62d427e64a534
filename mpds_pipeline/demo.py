"""``mpds demo``: the pipeline end to end through Dagster, against the bundled sample server.

Starts the sample IMDb server on a free loopback port, then materialises each stage
with ``dagster asset materialize`` exactly as a user or CI would, and prints where the
outputs are. Runs are recorded in ``<data dir>/.dagster`` so ``dagster dev`` with that
DAGSTER_HOME shows them afterwards.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .imdb.partitions import id_ranges

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
DEMO_PARTITION_SIZE = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sample_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "mpds_pipeline.cli", "sample-server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the sample server exited with code {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/robots.txt", timeout=1.0)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the sample server did not answer within 30 s")


def demo_environment(data_dir: Path, port: int, titles: int, persons: int) -> dict[str, str]:
    home = data_dir / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_DAGSTER_YAML, home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
        "MPDS_DATA_DIR": str(data_dir),
        "MPDS_IMDB_BASE_URL": f"http://127.0.0.1:{port}",
        "MPDS_TITLE_IDS": f"1-{titles}",
        "MPDS_PERSON_IDS": f"1-{persons}",
        "MPDS_PARTITION_SIZE": str(DEMO_PARTITION_SIZE),
        # The sample server is ours: a brisker rate than IMDb's 1 request/s default.
        "MPDS_RATE": os.environ.get("MPDS_RATE", "25"),
        "MPDS_BACKOFF_BASE_S": "0.2",
    }


def materialize(select: str, env: dict[str, str], partition: str | None = None) -> None:
    command = ["dagster", "asset", "materialize", "-m", "mpds_pipeline", "--select", select]
    if partition:
        command += ["--partition", partition]
    print(f"$ {' '.join(command)}", flush=True)
    dagster = Path(sys.executable).with_name("dagster")
    command[0] = str(dagster) if dagster.exists() else "dagster"
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise SystemExit(f"dagster asset materialize --select {select} failed (exit {completed.returncode})")


def run_demo(data_dir: str | None, titles: int, persons: int) -> int:
    root = Path(data_dir or os.environ.get("MPDS_DATA_DIR") or "data/demo").resolve()
    port = free_port()
    server = start_sample_server(port)
    try:
        env = demo_environment(root, port, titles, persons)
        print(f"sample IMDb server on http://127.0.0.1:{port}; data in {root}", flush=True)
        for id_range in id_ranges("title", 1, titles, DEMO_PARTITION_SIZE):
            materialize("title_pages,title_records", env, id_range.key)
        for id_range in id_ranges("person", 1, persons, DEMO_PARTITION_SIZE):
            materialize("person_pages,person_records", env, id_range.key)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print_summary(root)
    return 0


def print_summary(root: Path) -> None:
    from .imdb.record_store import read_records
    from .layout import DataLayout

    layout = DataLayout(root)
    titles = read_records(layout.records_dir("title"), "title")
    persons = read_records(layout.records_dir("person"), "person")
    print()
    print(f"title records:  {len(titles):5d} in {layout.records_dir('title')}")
    print(f"person records: {len(persons):5d} in {layout.records_dir('person')}")
    print(f"raw pages (WARC): {layout.root / 'crawl'}")
    print(f"browse the runs: DAGSTER_HOME={layout.root / '.dagster'} dagster dev -m mpds_pipeline")
