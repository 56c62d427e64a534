"""Download IMDb's non-commercial dataset files (``title.basics.tsv.gz`` and friends).

The files are large, so they are streamed to disk through the project's HTTP client,
renamed into place only when complete, capped in size, and not fetched again when the
server says they are unchanged. See docs/crawl.md.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..base.files import write_atomic
from ..base.folders import download_record_file
from ..base.progress import Progress, ProgressLog
from ..net.client import PoliteClient
from ..net.client_settings import ClientSettings, HostPolicy
from ..net.waf import is_waf_challenge

DEFAULT_DATASETS_URL = "https://datasets.imdbws.com"
DATASET_FILE_NAMES: tuple[str, ...] = ("title.basics.tsv.gz", "name.basics.tsv.gz", "title.principals.tsv.gz")
CHUNK_BYTES = 1 << 20
MAX_FILE_BYTES = 5_000_000_000  # title.principals.tsv.gz, the largest, is under 1 GB
# One file at a time, a few requests a day: IMDb's dataset host has no robots.txt to ask
# (it is a download host, not pages), but its WAF is detected as everywhere.
DATASETS_HOST_POLICY = HostPolicy(rate_per_second=1.0, concurrency=1, obey_robots=False, detect_waf=True)


class DatasetDownloadError(RuntimeError):
    """A dataset file could not be downloaded (HTTP error, blocked, truncated body)."""


@dataclass
class FileOutcome:
    name: str
    path: Path
    status: str  # "downloaded" or "unchanged"
    bytes: int


@dataclass
class DownloadReport:
    """What :func:`fetch_dataset_files` did, with counts for asset metadata."""

    base_url: str
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.files]

    @property
    def downloaded(self) -> int:
        return sum(f.status == "downloaded" for f in self.files)

    @property
    def unchanged(self) -> int:
        return sum(f.status == "unchanged" for f in self.files)

    @property
    def bytes_downloaded(self) -> int:
        return sum(f.bytes for f in self.files if f.status == "downloaded")

    def to_metadata(self) -> dict:
        return {
            "base_url": self.base_url,
            "downloaded": self.downloaded,
            "unchanged": self.unchanged,
            "bytes_downloaded": self.bytes_downloaded,
            "files": {f.name: f.status for f in self.files},
        }


def fetch_dataset_files(
    base_url: str | None,
    dest_dir: Path | str,
    names: Iterable[str] = DATASET_FILE_NAMES,
    client_settings: ClientSettings | None = None,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    log: ProgressLog | None = None,
) -> DownloadReport:
    """Download ``names`` from ``base_url`` (None or "": IMDb's dataset host) into
    ``dest_dir``, saying per file whether it was fetched.

    ``client_settings``: the crawl's client settings (User-Agent, contact, timeouts,
    retries); the dataset host gets its own politeness policy. ``log`` gets progress
    lines per file (MiB done of the total, rate, ETA).
    """
    base_url = base_url or DEFAULT_DATASETS_URL
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    settings = (client_settings or ClientSettings(timeout_s=60.0)).with_host(base_url, DATASETS_HOST_POLICY)
    report = DownloadReport(base_url=base_url)

    async def run() -> None:
        async with PoliteClient(settings, log=log) as client:
            for name in names:
                url = f"{base_url.rstrip('/')}/{name}"
                report.files.append(await _fetch_one(client, url, dest / name, max_file_bytes, log))

    asyncio.run(run())
    return report


def _load_meta(path: Path) -> dict:
    """What the server said about the copy on disk; empty when there is no valid copy."""
    meta_file = download_record_file(path)
    if not path.exists() or not meta_file.exists():
        return {}
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return {}
    # A file replaced or cut by hand is not the copy the metadata describes.
    return meta if meta.get("size") == path.stat().st_size else {}


def _same_as_local(status: int, headers: dict[str, str], meta: dict) -> bool:
    if not meta:
        return False
    if status == 304:
        return True
    etag, modified = headers.get("etag"), headers.get("last-modified")
    if etag and meta.get("etag"):
        return etag == meta["etag"]
    if modified and meta.get("last_modified"):
        return modified == meta["last_modified"] and _content_length(headers) in (None, meta["size"])
    length = _content_length(headers)
    return length is not None and length == meta.get("size")


def _content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    # With Content-Encoding the header counts the encoded bytes, not the file's.
    if value is None or not value.isdigit() or headers.get("content-encoding"):
        return None
    return int(value)


class _PartFile:
    """The body sink: ``<name>.part``, started afresh on each attempt, renamed into place
    by the caller only when the whole body arrived; progress in whole MiB."""

    def __init__(self, path: Path, meta: dict, max_bytes: int, log: ProgressLog | None):
        self.path, self.part = path, path.with_name(path.name + ".part")
        self.meta, self.max_bytes, self.log = meta, max_bytes, log
        self.file = None
        self.written = 0
        self.expected: int | None = None
        self.unchanged = False
        self.progress: Progress | None = None

    def accept(self, status: int, headers: dict[str, str]) -> bool:
        self.close()
        self.unchanged = _same_as_local(status, headers, self.meta)
        if self.unchanged or status != 200 or is_waf_challenge(status, headers):
            return False
        self.expected = _content_length(headers)
        if self.expected is not None and self.expected > self.max_bytes:
            return False  # refused unread; the caller says why
        self.file, self.written = open(self.part, "wb"), 0  # noqa: SIM115 - closed by close()
        total_mib = -(-self.expected // (1 << 20)) if self.expected is not None else None
        self.progress = Progress(f"imdb_index: downloading {self.path.name}", total_mib, self.log, unit="MiB")
        return True

    def write(self, chunk: bytes) -> None:
        mib = 1 << 20
        self.file.write(chunk)
        before, self.written = self.written, self.written + len(chunk)
        if self.written // mib > before // mib:  # whole MiB only: no line before the first
            self.progress.update(self.written // mib - before // mib)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.progress is not None:
            if self.written % (1 << 20):  # the last part of a MiB
                self.progress.update(1)
            self.progress.close()
            self.progress = None

    def discard(self) -> None:
        self.close()
        self.part.unlink(missing_ok=True)


async def _fetch_one(
    client: PoliteClient, url: str, path: Path, max_bytes: int, log: ProgressLog | None = None
) -> FileOutcome:
    meta = _load_meta(path)
    conditional = {}
    if meta.get("etag"):
        conditional["If-None-Match"] = meta["etag"]
    if meta.get("last_modified"):
        conditional["If-Modified-Since"] = meta["last_modified"]
    sink = _PartFile(path, meta, max_bytes, log)
    try:
        resp = await client.fetch(url, headers=conditional, sink=sink, max_bytes=max_bytes, follow_redirects=True)
        sink.close()
        if sink.unchanged:
            sink.discard()
            return FileOutcome(path.name, path, "unchanged", meta["size"])
        _raise_for_status(url, resp, sink, max_bytes)
        if sink.expected is not None and sink.written != sink.expected:
            raise DatasetDownloadError(f"{url}: got {sink.written} of {sink.expected} bytes")
        os.replace(sink.part, path)
    except BaseException:
        sink.discard()  # a crash never leaves a partial file, under the real name or the .part one
        raise
    write_atomic(
        download_record_file(path),
        json.dumps(
            {
                "url": url,
                "etag": resp.headers.get("etag"),
                "last_modified": resp.headers.get("last-modified"),
                "size": sink.written,
            }
        ),
    )
    return FileOutcome(path.name, path, "downloaded", sink.written)


def _raise_for_status(url: str, resp, sink: _PartFile, max_bytes: int) -> None:
    # A WAF challenge is "blocked", not data: stop and say so (never work around it).
    if resp.status_code is not None and is_waf_challenge(resp.status_code, resp.headers):
        raise DatasetDownloadError(f"blocked by the server's firewall (HTTP {resp.status_code}) at {url}")
    if resp.too_large or (sink.expected is not None and sink.expected > max_bytes):
        reason = resp.error or f"Content-Length {sink.expected:,} is over the {max_bytes:,}-byte cap (not downloaded)"
        raise DatasetDownloadError(f"{url}: {reason}; the partial file was removed")
    if resp.error is not None:
        raise DatasetDownloadError(f"{url}: {resp.error}")
    if resp.status_code != 200:
        raise DatasetDownloadError(f"HTTP {resp.status_code} for {url}")
