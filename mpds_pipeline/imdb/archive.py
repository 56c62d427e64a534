"""The raw page archive of one crawl partition: ``archive_dir/pages.warc.gz``.

Records are appended one gzip member each as responses arrive, so memory stays flat and
a kill loses at most one record; torn tails are cut by the writer and skipped by
readers. ``partition_lock`` makes one crawl per partition. Details: docs/crawl.md and
docs/scale-and-failures.md.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import socket
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, get_args

from warcio.archiveiterator import ArchiveIterator

from ..base.files import DiskFull, is_disk_full
from ..base.folders import PagesFolder
from ..net.client import FetchResponse
from .records import FINAL_STATUSES

# "full": whole pages; "data": only their data scripts (a fraction of the size).
ArchiveMode = Literal["full", "data"]
ARCHIVE_MODES: tuple[ArchiveMode, ...] = get_args(ArchiveMode)
# Headers that describe the wire encoding, which no longer matches the stored body.
_WIRE_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"})
_READ_CHUNK = 1 << 20

H_KIND, H_ID, H_STATUS = "WARC-MPDS-Kind", "WARC-MPDS-Id", "WARC-MPDS-Status"
H_REDIRECT, H_ATTEMPTS, H_CONTENT = "WARC-MPDS-Redirect-Id", "WARC-MPDS-Attempts", "WARC-MPDS-Content"
# Where the stored page came from (imdb/records.py PageSource), so the archive alone can
# rebuild every outcome's provenance: PageOutcome field -> WARC header. Absent on records
# written before sources existed: those read back as live fetches.
PROVENANCE_HEADERS: dict[str, str] = {
    "source": "WARC-MPDS-Source",
    "source_url": "WARC-MPDS-Source-URL",
    "capture_crawl": "WARC-MPDS-Capture-Crawl",
    "capture_timestamp": "WARC-MPDS-Capture-Timestamp",
    "capture_filename": "WARC-MPDS-Capture-Filename",
    "capture_offset": "WARC-MPDS-Capture-Offset",
    "capture_length": "WARC-MPDS-Capture-Length",
    "capture_digest": "WARC-MPDS-Capture-Digest",
}
_INT_PROVENANCE = frozenset({"capture_offset", "capture_length"})


@dataclass
class ArchivedResponse:
    url: str
    kind: str
    id: int
    status: str
    http_status: int | None
    headers: dict[str, str]
    body: bytes
    redirect_id: int | None = None
    attempts: int = 1
    fetched_at: str = ""
    content: str = "full"  # "full" page or "data" scripts only
    # Provenance (PROVENANCE_HEADERS): "live" unless an archive's capture was stored.
    source: str = "live"
    source_url: str | None = None
    capture_crawl: str | None = None
    capture_timestamp: str | None = None
    capture_filename: str | None = None
    capture_offset: int | None = None
    capture_length: int | None = None
    capture_digest: str | None = None


def _default_extractor(html: bytes) -> bytes | None:
    from .parsing import extract_data_scripts

    return extract_data_scripts(html)


class PageArchive:
    """Append-only WARC archive of one partition's final responses."""

    def __init__(
        self,
        archive_dir: Path,
        mode: ArchiveMode = "full",
        *,
        extractor: Callable[[bytes], bytes | None] | None = None,
        repair: bool = True,
    ):
        """``repair``: cut a truncated last record (a killed writer's); only a holder of
        ``partition_lock`` may, a reader passes False and just skips it."""
        if mode not in ARCHIVE_MODES:
            raise ValueError(f"archive mode must be one of {ARCHIVE_MODES}, got {mode!r}")
        self.archive_dir = Path(archive_dir)
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self.path = PagesFolder(self.archive_dir).archive
        self.mode = mode
        self._extractor = extractor or _default_extractor
        self.dropped_tail_bytes = self._drop_truncated_tail() if repair else 0
        # Bytes after the last complete record that the last full read skipped (a reader's
        # view of a torn tail: a write cut short by a kill or a full disk, or one in progress).
        self.torn_tail_bytes = 0
        self._index: dict[tuple[str, int], ArchivedResponse] = {}
        for rec in self.iter_responses(with_bodies=False):
            self._index[(rec.kind, rec.id)] = rec

    # --- reading ---------------------------------------------------------------------
    def archived_ids(self, kind: str) -> set[int]:
        """Ids of ``kind`` with a final response, whatever base URL fetched them."""
        return {item_id for (k, item_id) in self._index if k == kind}

    def archived_summaries(self) -> list[ArchivedResponse]:
        """One body-less entry per archived id (what outcomes are rebuilt from after a kill)."""
        return list(self._index.values())

    def iter_responses(self, *, with_bodies: bool = True) -> Iterator[ArchivedResponse]:
        """Every archived response in write order; a truncated last record is skipped and
        counted in ``torn_tail_bytes`` once the iteration ends."""
        size = self.path.stat().st_size if self.path.exists() else 0
        complete = 0
        for member, end in _iter_gzip_members(self.path):
            complete = end
            for record in ArchiveIterator(io.BytesIO(member)):
                if record.rec_type != "response":
                    continue
                yield _to_archived(record, with_bodies)
        self.torn_tail_bytes = max(0, size - complete)  # a file grown while read has none

    def __len__(self) -> int:
        return len(self._index)

    # --- writing ---------------------------------------------------------------------
    def write(self, outcome, resp: FetchResponse) -> bool:
        """Append one final response as a flushed gzip member; returns False when not final."""
        if outcome.status not in FINAL_STATUSES:
            return False
        body, content = resp.content or b"", "full"
        if self.mode == "data" and outcome.status == "ok" and body:
            scripts = self._extractor(body)
            if scripts is not None:
                body, content = scripts, "data"
        provenance = _provenance_of(outcome)
        record_bytes = self._record_bytes(outcome, resp, body, content, provenance)
        self._append(record_bytes)
        self._index[(outcome.kind, outcome.id)] = ArchivedResponse(
            outcome.url,
            outcome.kind,
            outcome.id,
            outcome.status,
            resp.status_code,
            {},
            b"",
            outcome.redirect_id,
            outcome.attempts,
            outcome.fetched_at,
            content,
            **provenance,
        )
        return True

    def _append(self, record_bytes: bytes) -> None:
        """Append one whole record, or nothing: a failed write (a full disk) is cut off again
        at once, so the archive still ends at its last complete record."""
        start = self.path.stat().st_size if self.path.exists() else 0
        try:
            with open(self.path, "ab") as fh:
                fh.write(record_bytes)
                fh.flush()
        except OSError as error:
            # If even this fails, the next writer's repair on open cuts it; readers skip it meanwhile.
            with contextlib.suppress(OSError):
                os.truncate(self.path, start)
            if is_disk_full(error):
                raise DiskFull(
                    self.path,
                    f"The archive ends at its last complete record ({start:,} bytes); the record being "
                    "written was not kept and its id is fetched again by the rerun.",
                    needed_bytes=len(record_bytes),
                ) from error
            raise

    def _record_bytes(self, outcome, resp: FetchResponse, body: bytes, content: str, provenance: dict) -> bytes:
        """One gzip member holding one WARC/1.0 response record. Built here rather than by
        warcio's writer, which costs more CPU per record and compresses at level 9 (figures:
        docs/benchmarks.md); warcio reads it back."""
        status = resp.status_code or 0
        http_lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        http_lines += [f"{k}: {v}" for k, v in resp.headers.items() if k not in _WIRE_HEADERS]
        http_lines.append(f"content-length: {len(body)}")
        block_head = ("\r\n".join(http_lines) + "\r\n\r\n").encode("utf-8", "replace")
        warc_headers = {
            "WARC-Type": "response",
            "WARC-Record-ID": f"<urn:uuid:{uuid.uuid4()}>",
            "WARC-Date": _warc_date(outcome.fetched_at),
            "WARC-Target-URI": _one_line(outcome.url),
            H_KIND: outcome.kind,
            H_ID: str(outcome.id),
            H_STATUS: outcome.status,
            H_ATTEMPTS: str(outcome.attempts),
            H_CONTENT: content,
        }
        if outcome.redirect_id is not None:
            warc_headers[H_REDIRECT] = str(outcome.redirect_id)
        for name, value in provenance.items():
            if value is not None:
                warc_headers[PROVENANCE_HEADERS[name]] = _one_line(str(value))
        warc_headers["WARC-Payload-Digest"] = "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode()
        warc_headers["Content-Type"] = "application/http; msgtype=response"
        warc_headers["Content-Length"] = str(len(block_head) + len(body))
        head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in warc_headers.items()) + "\r\n"
        gzipper = zlib.compressobj(6, zlib.DEFLATED, 31)
        return b"".join(
            (
                gzipper.compress(head.encode("utf-8") + block_head),
                gzipper.compress(body),
                gzipper.compress(b"\r\n\r\n"),
                gzipper.flush(),
            )
        )

    # --- recovery --------------------------------------------------------------------
    def _drop_truncated_tail(self) -> int:
        """Cut the file after its last complete gzip member; returns the bytes dropped."""
        if not self.path.exists():
            return 0
        size = self.path.stat().st_size
        good_end = 0
        for _member, end in _iter_gzip_members(self.path):
            good_end = end
        if good_end < size:
            os.truncate(self.path, good_end)
        return size - good_end


class PartitionBusy(RuntimeError):
    """Another crawl holds this partition's lock; nothing was fetched or written."""


@contextmanager
def partition_lock(archive_dir: Path, *, run_id: str | None = None) -> Iterator[dict]:
    """Hold ``archive_dir``'s crawl lock (exclusive, non-blocking) or raise PartitionBusy.

    Fails fast rather than waiting: a second run of one partition has nothing to do
    that the first is not doing, and a waiting run would hide how many are queued."""
    archive_dir = Path(archive_dir)
    archive_dir.mkdir(parents=True, exist_ok=True)
    path = PagesFolder(archive_dir).lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (PEP 446)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PartitionBusy(
                f"partition {archive_dir.name} is already being crawled ({_describe_holder(path)}), so this run "
                "fetched nothing. One crawl per partition: two would double IMDb's request rate and write the "
                "same archive. Wait for that run to finish (or stop it: the lock goes with its process), then "
                f"rerun; a rerun fetches only what is not archived yet. Lock file: {path}"
            ) from None
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run_id": run_id,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield holder
        finally:
            os.ftruncate(fd, 0)  # the file names a live holder only
    finally:
        os.close(fd)  # releases the flock


def _describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "holder not recorded yet: it is just starting"
    parts = [f"host {holder.get('host', '?')}", f"pid {holder.get('pid', '?')}"]
    if holder.get("run_id"):
        parts.append(f"Dagster run {holder['run_id']}")
    parts.append(f"since {holder.get('since', '?')}")
    return "held by " + ", ".join(parts)


def _iter_gzip_members(path: Path) -> Iterator[tuple[bytes, int]]:
    """(uncompressed member, file offset where it ends) for each complete gzip member."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        offset = 0  # file offset where the current member starts
        pending = b""
        while True:
            decomp = zlib.decompressobj(wbits=31)
            parts: list[bytes] = []
            consumed = 0
            data = pending
            pending = b""
            while True:
                if not data:
                    data = fh.read(_READ_CHUNK)
                    if not data:
                        return  # end of file inside (or before) a member: incomplete, dropped
                try:
                    parts.append(decomp.decompress(data))
                except zlib.error:
                    return  # a damaged member: everything from here on is dropped
                if decomp.eof:
                    pending = decomp.unused_data
                    consumed += len(data) - len(pending)
                    break
                consumed += len(data)
                data = b""
            offset += consumed
            yield b"".join(parts), offset


def _to_archived(record, with_bodies: bool) -> ArchivedResponse:
    h = record.rec_headers
    http = record.http_headers
    redirect = h.get_header(H_REDIRECT)
    status_code = int(http.get_statuscode()) if http is not None else None
    return ArchivedResponse(
        url=h.get_header("WARC-Target-URI"),
        kind=h.get_header(H_KIND) or "",
        id=int(h.get_header(H_ID) or 0),
        status=h.get_header(H_STATUS) or "",
        http_status=status_code or None,
        headers={k.lower(): v for k, v in (http.headers if http is not None else [])},
        body=record.content_stream().read() if with_bodies else b"",
        redirect_id=int(redirect) if redirect else None,
        attempts=int(h.get_header(H_ATTEMPTS) or 1),
        fetched_at=_iso_from_warc(h.get_header("WARC-Date")),
        content=h.get_header(H_CONTENT) or "full",
        **_provenance_from_headers(h),
    )


def _provenance_of(outcome) -> dict:
    """The provenance fields of an outcome (a live fetch when it has none)."""
    fields = {name: getattr(outcome, name, None) for name in PROVENANCE_HEADERS}
    fields["source"] = fields["source"] or "live"
    if fields["source"] == "live" and fields["source_url"] is None:
        fields["source_url"] = outcome.url
    return fields


def _provenance_from_headers(h) -> dict:
    fields: dict = {}
    for name, header in PROVENANCE_HEADERS.items():
        value = h.get_header(header)
        fields[name] = int(value) if value is not None and name in _INT_PROVENANCE else value
    fields["source"] = fields["source"] or "live"
    if fields["source"] == "live" and fields["source_url"] is None:
        fields["source_url"] = h.get_header("WARC-Target-URI")
    return fields


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _warc_date(iso: str) -> str:
    try:
        when = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        when = datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_from_warc(value: str | None) -> str:
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return value
