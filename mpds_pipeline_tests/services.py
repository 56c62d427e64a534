"""Real PostgreSQL and Redis servers for tests, on loopback, in throwaway folders.

Both come from the Debian packages that ``.ci/run`` installs (``postgresql``,
``redis-server``). A test that needs one and finds no binary is skipped with the reason.
conftest registers this module as a plugin, so any test can ask for these fixtures.
PostgreSQL refuses to run as root, so under root its commands run as the ``postgres``
system user (created by the Debian package) through ``runuser``; its folder is made in
/tmp (not pytest's root-only tmp_path) and handed to that user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
STARTUP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def find_postgres_bin(name: str) -> str | None:
    """A PostgreSQL server binary: the newest /usr/lib/postgresql/N/bin, else PATH."""
    for directory in POSTGRES_BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    folder: Path

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database; returns its name."""
        import psycopg2

        connection = psycopg2.connect(self.url("postgres"))
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name

    def env(self, database: str) -> dict[str, str]:
        """The variables deploy/dagster.postgres.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }


def _as_postgres_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is absent: PostgreSQL cannot be started as root")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--", *args]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster on a free loopback port, for the whole session."""
    initdb, pg_ctl = find_postgres_bin("initdb"), find_postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")

    folder = Path(tempfile.mkdtemp(prefix="mpds-postgres-"))
    data_dir, password_file = folder / "data", folder / "password"
    user, password, port = "mpds", "mpds-test", free_port()
    password_file.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(password_file, "postgres")
    run = lambda args: subprocess.run(_as_postgres_user(args), capture_output=True, text=True, timeout=120, cwd=folder)  # noqa: E731
    init = run(
        [
            initdb,
            "-D",
            str(data_dir),
            "-U",
            user,
            "--pwfile",
            str(password_file),
            "-A",
            "scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        ]
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    # Loopback only, no Unix socket, no fsync: a throwaway test server.
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' "
        "-c fsync=off -c max_connections=200"
    )
    start = run(
        [pg_ctl, "-D", str(data_dir), "-l", str(folder / "server.log"), "-o", options, "-w", "-t", "60", "start"]
    )
    if start.returncode != 0:
        log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log}")
    try:
        wait_for_port(port)
        yield PostgresServer("127.0.0.1", port, user, password, folder)
    finally:
        run([pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class RedisServer:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server on a free loopback port, no persistence, for the whole session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    folder = Path(tempfile.mkdtemp(prefix="mpds-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield RedisServer(port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
