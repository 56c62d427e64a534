"""One data directory, one instance: settings.env, the instance the mpds commands use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpds_pipeline.base import settings
from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.base.settings import read_settings_file, write_settings_file
from mpds_pipeline.cli.local import REPO_DAGSTER_YAML, instance_environment
from mpds_pipeline.imdb.partitions import partition_size


def test_settings_file_is_read_where_the_data_dir_points_and_the_environment_wins(tmp_path, monkeypatch):
    layout = DataLayout(tmp_path / "data")
    write_settings_file(
        layout.settings_file,
        {"MPDS_PARTITION_SIZE": "77", "MPDS_SD_MODEL": "/models/tiny sd"},
        "a comment\non two lines",
    )
    assert layout.settings_file.read_text().startswith("# a comment\n# on two lines\n")
    assert read_settings_file(layout.settings_file) == {"MPDS_PARTITION_SIZE": "77", "MPDS_SD_MODEL": "/models/tiny sd"}
    monkeypatch.setenv("MPDS_DATA_DIR", str(layout.root))
    monkeypatch.delenv("MPDS_PARTITION_SIZE", raising=False)
    monkeypatch.delenv("MPDS_SD_MODEL", raising=False)
    assert partition_size() == 77
    assert settings.env_str("MPDS_SD_MODEL", "hub/id") == "/models/tiny sd"
    monkeypatch.setenv("MPDS_PARTITION_SIZE", "50")
    assert partition_size() == 50  # the environment wins
    # Edited later: read again (the cache is keyed on the file's mtime and size).
    write_settings_file(layout.settings_file, {"MPDS_SD_MODEL": "/models/other"}, "edited")
    assert settings.env_str("MPDS_SD_MODEL", "hub/id") == "/models/other"
    monkeypatch.setenv("MPDS_DATA_DIR", str(tmp_path / "elsewhere"))
    assert settings.env_str("MPDS_SD_MODEL", "hub/id") == "hub/id"  # no file there


def test_a_malformed_settings_line_is_a_clear_error(tmp_path):
    path = tmp_path / "settings.env"
    path.write_text("# ok\nMPDS_RATE=2\nnot a setting\n")
    with pytest.raises(ValueError, match=r"settings.env, line 3: expected KEY=VALUE, got 'not a setting'"):
        read_settings_file(path)


def test_the_instance_lives_in_the_data_dir_unless_dagster_home_says_otherwise(tmp_path):
    data = tmp_path / "data"
    env = instance_environment(data, base={"PATH": os.environ["PATH"]})
    home = data / ".dagster"
    assert (
        env["DAGSTER_HOME"] == str(home)
        and env["MPDS_DATA_DIR"] == str(data)
        and env["DAGSTER_DISABLE_TELEMETRY"] == "1"
    )
    assert (home / "dagster.yaml").read_text() == REPO_DAGSTER_YAML.read_text()
    (home / "dagster.yaml").write_text(REPO_DAGSTER_YAML.read_text() + "# edited by the user\n")
    instance_environment(data, base={})
    assert (home / "dagster.yaml").read_text().endswith("# edited by the user\n")  # never overwritten
    instance_environment(data, base={}, own_instance=True)
    assert (home / "dagster.yaml").read_text() == REPO_DAGSTER_YAML.read_text()  # the demo's own: replaced
    other = instance_environment(data, base={"DAGSTER_HOME": str(tmp_path / "home")})
    assert other["DAGSTER_HOME"] == str(tmp_path / "home") and (tmp_path / "home" / "dagster.yaml").exists()


def test_mpds_ranges_registers_the_data_dirs_ranges_in_its_instance(tmp_path):
    layout = DataLayout(tmp_path / "data")
    write_settings_file(
        layout.settings_file,
        {"MPDS_TITLE_IDS": "1-120", "MPDS_PERSON_IDS": "1-60", "MPDS_PARTITION_SIZE": "60"},
        "test",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPDS_") and k != "DAGSTER_HOME"}
    mpds = str(Path(sys.executable).with_name("mpds"))
    done = subprocess.run(
        [mpds, "ranges", "--data-dir", str(layout.root)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "title: 2 new id ranges, person: 1 new id ranges"
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from dagster import DagsterInstance; print(DagsterInstance.get().get_dynamic_partitions('title_ranges'))",
        ],
        env={**env, "DAGSTER_HOME": str(layout.dagster_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.stdout.strip() == "['tt0000001-tt0000060', 'tt0000061-tt0000120']", listed.stderr
