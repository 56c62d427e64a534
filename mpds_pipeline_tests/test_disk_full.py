"""A full disk: the crawl stops with an error naming the path, the space left and what to
do; nothing half-written is read as data (a torn archive tail is cut by the writer, and
skipped and counted by readers). Faults are real ENOSPC errors: a write that fails half
way (always), and a tiny tmpfs (where this user may mount one)."""

from __future__ import annotations

import builtins
import errno
import subprocess
import uuid

import pytest

from mpds_pipeline.base.files import DiskFull, atomic_open, atomic_path
from mpds_pipeline.imdb import archive as archive_module
from mpds_pipeline.imdb.archive import PageArchive
from mpds_pipeline.imdb.crawl import crawl_partition
from mpds_pipeline.sample_server import SampleImdbServer
from mpds_pipeline.sources.partition_records import build_records

from .test_archive import outcome, response
from .test_crawl import settings_for


class _Disk:
    """The space left on a pretend disk: ``None`` is plenty."""

    def __init__(self):
        self.room: int | None = None


class _FillsUp:
    """A file opened for append on ``disk``: a write past the room left lands in part (as
    the kernel's does) and then fails with ENOSPC."""

    def __init__(self, real, disk: _Disk):
        self._real, self._disk = real, disk

    def write(self, data: bytes) -> int:
        room = self._disk.room
        if room is None or len(data) <= room:
            if room is not None:
                self._disk.room = room - len(data)
            return self._real.write(data)
        self._real.write(data[:room])
        self._real.flush()
        self._disk.room = 0
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


@pytest.fixture
def disk_with_room(monkeypatch):
    """``set(n)``: from now on the archive's appends share a disk with ``n`` bytes left
    (``None``: space freed)."""
    disk = _Disk()

    def fake_open(path, mode="r", *args, **kwargs):
        handle = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 - closed by the caller's with
        return _FillsUp(handle, disk) if "a" in mode else handle

    monkeypatch.setattr(archive_module, "open", fake_open, raising=False)
    return lambda n: setattr(disk, "room", n)


def test_a_full_disk_mid_record_leaves_the_archive_whole_and_says_what_to_do(tmp_path, disk_with_room):
    archive = PageArchive(tmp_path)
    archive.write(outcome(1), response(1))
    archive.write(outcome(2), response(2))
    path = tmp_path / "pages.warc.gz"
    whole = path.read_bytes()
    disk_with_room(300)  # record 3 is larger: it lands in part, then the disk is full

    with pytest.raises(DiskFull) as caught:
        archive.write(outcome(3), response(3))
    error = caught.value
    message = str(error)
    assert error.errno == errno.ENOSPC and isinstance(error, OSError)
    assert f"no space left on the filesystem holding {path}: {error.free_bytes:,} bytes (" in message
    assert f"needed {error.needed_bytes:,} bytes" in message and error.needed_bytes > 300
    assert "What to do: free space" in message and "rerun" in message
    # The torn part was cut off at once: the file is byte for byte what it was.
    assert path.read_bytes() == whole
    reader = PageArchive(tmp_path, repair=False)
    assert reader.archived_ids("title") == {1, 2} and reader.torn_tail_bytes == 0


def test_a_write_that_could_not_be_cut_back_is_skipped_and_counted_by_readers(tmp_path, monkeypatch, disk_with_room):
    archive = PageArchive(tmp_path)
    archive.write(outcome(1), response(1))
    disk_with_room(500)

    def refuse_truncate(*args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(archive_module.os, "truncate", refuse_truncate)
    with pytest.raises(DiskFull):
        archive.write(outcome(2), response(2))
    assert (tmp_path / "pages.warc.gz").stat().st_size > 500  # the torn tail is still there

    parsed = build_records(tmp_path, "title")
    # Only the complete record was parsed (this page has no title id: a parse error).
    assert [r.id for r in parsed.records] + [e["id"] for e in parsed.errors] == [1]
    assert parsed.torn_tail_bytes == 500
    (warning,) = parsed.warnings
    assert "500 bytes that are no complete record" in warning and "title_pages" in warning


def test_atomic_writes_on_a_full_disk_keep_the_old_file(tmp_path):
    target = tmp_path / "table.parquet"
    target.write_bytes(b"old")
    with pytest.raises(DiskFull) as caught, atomic_open(target, "wb") as out:
        out.write(b"new, half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]
    assert "table.parquet is as it was" in str(caught.value) and str(target) in str(caught.value)
    with pytest.raises(OSError) as other, atomic_path(target):
        raise OSError(errno.EACCES, "Permission denied")
    assert not isinstance(other.value, DiskFull)  # only a full disk is reported as one


def test_the_pages_asset_fails_with_the_path_free_space_and_what_to_do(tmp_path, disk_with_room):
    from dagster import DagsterInstance, materialize

    from mpds_pipeline.defs.assets.crawl import title_assets
    from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, SourcesResource

    key = "tt0000001-tt0000030"
    with SampleImdbServer() as server, DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("title_ranges", [key])
        resources = {
            "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=0, backoff_base_s=0.05),
            "data_dir": DataDirResource(path=str(tmp_path / "data")),
            "sources": SourcesResource(page_sources=["live"]),
        }
        disk_with_room(20_000)  # a few pages fit (about 2 KB each in data mode)
        result = materialize(
            [title_assets[0]], partition_key=key, resources=resources, instance=instance, raise_on_error=False
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        description = failure.step_failure_data.user_failure_data.description
        archive_path = tmp_path / "data" / "crawl" / "title_pages" / key / "pages.warc.gz"
        assert f"no space left on the filesystem holding {archive_path}" in description
        assert "bytes (" in description and "free" in description and "What to do: free space" in description
        metadata = failure.step_failure_data.user_failure_data.metadata
        assert metadata["free_bytes"].value >= 0 and metadata["needed_bytes"].value > 0

        archived = PageArchive(archive_path.parent, repair=False)
        assert 0 < len(archived.archived_ids("title")) < 30 and archived.torn_tail_bytes == 0

        disk_with_room(None)  # space freed: the rerun fetches only what is missing
        server.clear_log()
        rerun = materialize([title_assets[0]], partition_key=key, resources=resources, instance=instance)
        assert rerun.success
        fetched = {path for path in server.request_log if path.startswith("/title/")}
        assert len(fetched) == 30 - len(archived.archived_ids("title"))
        assert PageArchive(archive_path.parent, repair=False).archived_ids("title") == set(range(1, 31))


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 48 KiB tmpfs (skipped where this user may not mount one); ``grow()``
    frees space by making it larger."""
    mount_point = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount_point)], check=True)

    try:
        yield mount_point, grow
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_crawl_onto_a_full_filesystem_stops_cleanly_and_the_rerun_completes(tiny_filesystem, server):
    mount_point, grow = tiny_filesystem
    archive_dir = mount_point / "archive"
    settings = settings_for(server)
    with pytest.raises(DiskFull) as caught:
        crawl_partition("title", range(1, 61), settings, archive_dir)  # about 3 KB per page: it fills up
    message = str(caught.value)
    assert str(archive_dir / "pages.warc.gz") in message and "What to do" in message
    assert caught.value.free_bytes < caught.value.needed_bytes
    reader = PageArchive(archive_dir, repair=False)
    kept = reader.archived_ids("title")
    assert 0 < len(kept) < 60 and reader.torn_tail_bytes == 0  # whole records only
    parsed = build_records(archive_dir, "title")
    ok = {r.id for r in reader.iter_responses(with_bodies=False) if r.status == "ok"}
    assert {r.id for r in parsed.records} == ok and parsed.torn_tail_bytes == 0

    grow()
    server.clear_log()
    crawl_partition("title", range(1, 61), settings, archive_dir)
    fetched = {path: len(times) for path, times in server.request_log.items() if path.startswith("/title/")}
    assert set(fetched.values()) == {1} and len(fetched) == 60 - len(kept)
    assert PageArchive(archive_dir, repair=False).archived_ids("title") == set(range(1, 61))


@pytest.fixture
def server():
    with SampleImdbServer() as sample:
        yield sample


def test_disk_full_survives_pickling(tmp_path):
    import pickle

    error = DiskFull(tmp_path / "x", "Kept.", needed_bytes=10)
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, DiskFull) and str(again) == str(error) and again.needed_bytes == 10


def test_records_built_from_a_torn_archive_warn_and_count_it(tmp_path, server):
    import logging

    from dagster import DagsterInstance, materialize

    from mpds_pipeline.defs.assets.crawl import title_assets
    from mpds_pipeline.defs.resources import DataDirResource

    key = "tt0000001-tt0000030"
    archive_dir = tmp_path / "data" / "crawl" / "title_pages" / key
    crawl_partition("title", range(1, 11), settings_for(server), archive_dir)
    path = archive_dir / "pages.warc.gz"
    with open(path, "ab") as out:  # what a writer cut short leaves: the start of a gzip member
        out.write(path.read_bytes()[:700])
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("title_ranges", [key])
        result = materialize(
            [title_assets[1]],
            partition_key=key,
            resources={"data_dir": DataDirResource(path=str(tmp_path / "data"))},
            instance=instance,
        )
        (materialization,) = result.asset_materializations_for_node("title_records")
        warnings = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and entry.dagster_event is None
        ]
    assert materialization.metadata["torn_tail_bytes"].value == 700
    assert any("700 bytes that are no complete record" in w and str(path) in w for w in warnings)
    assert materialization.metadata["records"].value == 10 - len(
        [o for o in PageArchive(archive_dir, repair=False).iter_responses(with_bodies=False) if o.status != "ok"]
    )
