"""Shared fixtures. Tests run offline: no hub lookups, no telemetry."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# Partitions are fixed when the code location loads: give in-process tests small ones.
os.environ.setdefault("MPDS_TITLE_IDS", "1-200")
os.environ.setdefault("MPDS_PERSON_IDS", "1-200")
os.environ.setdefault("MPDS_PARTITION_SIZE", "50")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only real IMDb samples beside the checkout; skip when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"real IMDb samples not found at {SHARED_DIR} (../shared beside the repo)")
    return SHARED_DIR


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch) -> Path:
    """A throwaway DAGSTER_HOME with the project's instance config (SQLite, no telemetry)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home
