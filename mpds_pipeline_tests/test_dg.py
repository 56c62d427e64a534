"""Dagster's ``dg`` sees the project: ``dg check defs`` loads mpds_pipeline/definitions.py
(the same module workspace.yaml names) and ``dg list defs`` lists the assets of defs/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dg(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    dg = Path(sys.executable).with_name("dg")
    if not dg.exists() and shutil.which("dg") is None:
        pytest.skip("dg is not installed (pip install dagster-dg-cli)")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "VIRTUAL_ENV": sys.prefix,  # dg compares it with the project's .venv
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    return subprocess.run(
        [str(dg if dg.exists() else "dg"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dg_check_defs(tmp_path):
    done = _dg(tmp_path, "check", "defs")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_dg_list_defs_names_the_assets(tmp_path):
    done = _dg(tmp_path, "list", "defs", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("title_pages", "movies", "export", "lora_weights"):
        assert name in done.stdout
