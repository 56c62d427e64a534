"""The one atomic-write helper: the target appears whole or stays as it was, the temp file
sits beside it with a name unique per process and thread, and fsync happens when asked."""

from __future__ import annotations

import os
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.base import files
from mpds_pipeline.base.files import atomic_open, atomic_path, temp_path_for, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    write_atomic(target, '{"new": "é"}')
    assert target.read_text(encoding="utf-8") == '{"new": "é"}'
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "table.parquet"
    target.write_bytes(b"the old table")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_path(target) as tmp:
        pq.write_table(pa.table({"id": [1, 2]}), tmp)
        assert tmp.is_file() and tmp.parent == tmp_path and tmp.name.startswith(".")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"the old table"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]

    with pytest.raises(ValueError), atomic_open(tmp_path / "new.csv", "w", encoding="utf-8") as handle:
        handle.write("id\n1\n")
        raise ValueError("bad row")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]


def test_a_path_writer_and_an_open_writer_produce_the_file(tmp_path):
    with atomic_path(tmp_path / "t.parquet") as tmp:
        pq.write_table(pa.table({"id": [3, 1]}), tmp)
    assert pq.read_table(tmp_path / "t.parquet").column("id").to_pylist() == [3, 1]
    with atomic_open(tmp_path / "t.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("id\r\n1\r\n")
    assert (tmp_path / "t.csv").read_bytes() == b"id\r\n1\r\n"
    with pytest.raises(ValueError, match="whole file"), atomic_open(tmp_path / "t.csv", "a"):
        pass


def test_temp_names_differ_per_thread_and_name_the_process(tmp_path):
    target = tmp_path / "1.jpg"
    names = []
    worker = threading.Thread(target=lambda: names.append(temp_path_for(target)))
    worker.start()
    worker.join()
    mine = temp_path_for(target)
    assert mine != names[0]
    assert mine.parent == tmp_path and mine.name == f".1.jpg.{os.getpid()}.{threading.get_ident()}.part"
    # No scan of the project's folders picks it up as an image or a table.
    assert not mine.name.endswith(".jpg") and mine.name.startswith(".")


def test_a_temp_left_by_a_killed_writer_is_overwritten(tmp_path):
    target = tmp_path / "manifest.parquet"
    temp_path_for(target).write_bytes(b"half a file from a killed run" * 100)
    write_atomic(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert not temp_path_for(target).exists()


def test_fsync_happens_only_when_asked(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    write_atomic(tmp_path / "a", b"x", fsync=False)
    with atomic_path(tmp_path / "b", fsync=False) as tmp:
        tmp.write_bytes(b"y")
    assert synced == []
    write_atomic(tmp_path / "a", b"x")
    with atomic_path(tmp_path / "b") as tmp:
        tmp.write_bytes(b"y")
    with atomic_open(tmp_path / "c") as handle:
        handle.write(b"z")
    assert len(synced) == 3
