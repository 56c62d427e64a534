"""Download IMDb's non-commercial dataset files (``title.basics.tsv.gz`` and friends).

The files are hundreds of MB compressed, so they are streamed to disk in chunks (memory
stays bounded), written to a ``.part`` file and renamed into place only when complete
(a crash never leaves a truncated file under the real name), and not fetched again when
the server says they are unchanged: a conditional request (``If-None-Match`` /
``If-Modified-Since``) answered 304, or the same ETag, Last-Modified or, when the server
gives neither, the same size as the copy on disk. What was seen is kept beside each file
in ``<name>.meta.json``.

Memory stays bounded whatever the server sends (1 MiB chunks); disk is bounded by
``max_file_bytes`` (default 5 GB, several times the largest file IMDb publishes): a
Content-Length over it is refused before reading, and a body that grows past it is cut
and its partial file removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..files import atomic_open, write_atomic
from ..layout import download_record_file
from ..net.waf import is_waf_challenge
from ..progress import Progress, ProgressLog

DEFAULT_DATASETS_URL = "https://datasets.imdbws.com"
DATASET_FILE_NAMES: tuple[str, ...] = ("title.basics.tsv.gz", "name.basics.tsv.gz", "title.principals.tsv.gz")
CHUNK_BYTES = 1 << 20
MAX_FILE_BYTES = 5_000_000_000  # title.principals.tsv.gz, the largest, is under 1 GB
_DEFAULT_TIMEOUT_S = 60.0
_DEFAULT_USER_AGENT = "mpds-pipeline (IMDb non-commercial datasets)"


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
    client_settings: Any = None,
    *,
    transport: httpx.BaseTransport | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    log: ProgressLog | None = None,
) -> DownloadReport:
    """Download ``names`` from ``base_url`` (None or "": IMDb's dataset host) into
    ``dest_dir``, saying per file whether it was fetched.

    ``client_settings`` may be ``None``, a mapping or an object; ``user_agent``,
    ``timeout_s`` (or ``timeout``) and ``headers`` are read from it when present, so
    the crawl's client settings can be passed as they are. ``log`` gets progress lines
    per file (MiB done of the total, rate, ETA).
    """
    base_url = base_url or DEFAULT_DATASETS_URL
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    report = DownloadReport(base_url=base_url)
    with _make_client(client_settings, transport) as client:
        for name in names:
            report.files.append(_fetch_one(client, f"{base_url.rstrip('/')}/{name}", dest / name, max_file_bytes, log))
    return report


def _setting(settings: Any, *keys: str) -> Any:
    for key in keys:
        if isinstance(settings, dict) and settings.get(key) is not None:
            return settings[key]
        if settings is not None and not isinstance(settings, dict) and getattr(settings, key, None) is not None:
            return getattr(settings, key)
    return None


def _make_client(settings: Any, transport: httpx.BaseTransport | None) -> httpx.Client:
    headers = {"User-Agent": _setting(settings, "user_agent") or _DEFAULT_USER_AGENT}
    headers.update(_setting(settings, "headers") or {})
    timeout = float(_setting(settings, "timeout_s", "timeout") or _DEFAULT_TIMEOUT_S)
    return httpx.Client(headers=headers, timeout=timeout, follow_redirects=True, transport=transport)


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


def _same_as_local(response: httpx.Response, meta: dict) -> bool:
    if not meta:
        return False
    if response.status_code == 304:
        return True
    etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
    if etag and meta.get("etag"):
        return etag == meta["etag"]
    if modified and meta.get("last_modified"):
        return modified == meta["last_modified"] and _content_length(response) in (None, meta["size"])
    length = _content_length(response)
    return length is not None and length == meta.get("size")


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    # With Content-Encoding the header counts the encoded bytes, not the file's.
    if value is None or not value.isdigit() or response.headers.get("content-encoding"):
        return None
    return int(value)


def _fetch_one(
    client: httpx.Client, url: str, path: Path, max_bytes: int, log: ProgressLog | None = None
) -> FileOutcome:
    meta = _load_meta(path)
    conditional = {}
    if meta.get("etag"):
        conditional["If-None-Match"] = meta["etag"]
    if meta.get("last_modified"):
        conditional["If-Modified-Since"] = meta["last_modified"]
    with client.stream("GET", url, headers=conditional) as response:
        if _same_as_local(response, meta):
            return FileOutcome(path.name, path, "unchanged", meta["size"])
        _raise_for_status(url, response)
        announced = _content_length(response)
        if announced is not None and announced > max_bytes:
            raise DatasetDownloadError(
                f"{url}: Content-Length {announced:,} is over the {max_bytes:,}-byte cap (not downloaded)"
            )
        written = _stream_to(path, response, max_bytes, log)
    write_atomic(
        download_record_file(path),
        json.dumps(
            {
                "url": url,
                "etag": response.headers.get("etag"),
                "last_modified": response.headers.get("last-modified"),
                "size": written,
            }
        ),
    )
    return FileOutcome(path.name, path, "downloaded", written)


def _raise_for_status(url: str, response: httpx.Response) -> None:
    # A WAF challenge is "blocked", not data: stop and say so (never work around it).
    if is_waf_challenge(response.status_code, response.headers):  # the body is not read yet
        raise DatasetDownloadError(f"blocked by the server's firewall (HTTP {response.status_code}) at {url}")
    if response.status_code != 200:
        raise DatasetDownloadError(f"HTTP {response.status_code} for {url}")


def _stream_to(path: Path, response: httpx.Response, max_bytes: int, log: ProgressLog | None = None) -> int:
    """Write the body to ``path`` atomically; the number of bytes written. ``log`` gets
    progress lines in MiB (of the Content-Length, when the server sends one)."""
    expected = _content_length(response)
    written = 0
    mib = 1 << 20
    total_mib = -(-expected // mib) if expected is not None else None
    with (
        atomic_open(path, "wb") as out,
        Progress(f"imdb_index: downloading {path.name}", total_mib, log, unit="MiB") as progress,
    ):
        # iter_raw: keep the bytes as served (a .gz stays gzip even if the server
        # labels it Content-Encoding: gzip).
        for chunk in response.iter_raw(CHUNK_BYTES):
            out.write(chunk)
            before, written = written, written + len(chunk)
            if written // mib > before // mib:  # whole MiB only: no line before the first
                progress.update(written // mib - before // mib)
            if written > max_bytes:
                raise DatasetDownloadError(
                    f"{response.url}: over the {max_bytes:,}-byte cap; stopped at "
                    f"{written:,} bytes and removed the partial file"
                )
        if written % mib:  # the last part of a MiB
            progress.update(1)
        if expected is not None and written != expected:
            raise DatasetDownloadError(f"{response.url}: got {written} of {expected} bytes")
    return written
