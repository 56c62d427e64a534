"""What the archive sources (Common Crawl, the Wayback Machine) share.

A ``Capture`` is one index line; this module asks for a run of ids by URL prefix, keeps
each id's main-page captures, orders them by policy, checks a fetched payload against
the index digest, and reads the WARC or ARC record a Range request returns.
See docs/sources-archives.md.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from dataclasses import dataclass
from typing import Literal

# The host the archives captured IMDb under; index queries are by this host's URLs.
ARCHIVED_HOST = "www.imdb.com"
# The id runs of one index query: ids per prefix block (10**k) grow until the blocks
# cover more than twice the ids asked (or 100 ids, whichever is larger).
_MIN_BLOCK_COVER = 100

CapturePolicy = str  # "newest", "oldest", or one Common Crawl crawl id (e.g. "CC-MAIN-2024-10")
NEWEST, OLDEST = "newest", "oldest"

_MAIN_PAGE_RE = {
    "title": re.compile(r"^(?:https?://)?(?:www\.)?imdb\.com(?::\d+)?/title/tt(\d{7,9})/?(?:combined/?)?(?:[?#].*)?$"),
    "person": re.compile(r"^(?:https?://)?(?:www\.)?imdb\.com(?::\d+)?/name/nm(\d{7,9})/?(?:[?#].*)?$"),
}
_PATH_PREFIX = {"title": "/title/tt", "person": "/name/nm"}


@dataclass(frozen=True)
class Capture:
    """One index line: where an archived response of ``url`` lies and what it was."""

    source: Literal["common_crawl", "wayback"]
    kind: str
    id: int
    url: str  # the URL as archived
    timestamp: str  # 14 digits, UTC
    status: int | None
    mime: str
    digest: str  # base32 SHA-1 of the payload, upper case, without "sha1:"
    length: int | None  # Common Crawl: the gzip member's bytes; Wayback: its own record's
    offset: int | None = None  # Common Crawl only
    filename: str | None = None  # Common Crawl only
    crawl: str | None = None  # Common Crawl only

    @property
    def year(self) -> int | None:
        return int(self.timestamp[:4]) if self.timestamp[:4].isdigit() else None


def page_id(kind: str, url: str) -> int | None:
    """The id whose main page ``url`` is (``kind`` 'title' or 'person'), else None
    (a sub-page such as ``/fullcredits``, another kind, another host)."""
    match = _MAIN_PAGE_RE[kind].match(url.strip())
    return int(match.group(1)) if match else None


def id_code(kind: str, item_id: int) -> str:
    digits = f"{item_id:07d}"
    return ("tt" if kind == "title" else "nm") + digits


def id_prefixes(kind: str, lo: int, hi: int) -> list[tuple[str, int, int]]:
    """URL prefixes (``www.imdb.com/title/tt00001``, to be asked with a trailing ``*``)
    covering the ids ``lo..hi``, each with the first and last id it can match.

    Few queries, little waste: one block size 10**k for the whole run, the largest whose
    blocks cover at most max(2 x the ids, 100) ids. 7-digit and 8-digit ids never share a
    prefix (an 8-digit id never starts with 0), so a run across 10,000,000 is split there."""
    if lo < 1 or hi < lo:
        raise ValueError(f"need 1 <= lo <= hi, got {lo}..{hi}")
    runs = [(lo, hi)]
    if lo < 10_000_000 <= hi:
        runs = [(lo, 9_999_999), (10_000_000, hi)]
    out: list[tuple[str, int, int]] = []
    for run_lo, run_hi in runs:
        digits = len(f"{run_lo:07d}")
        budget = max(2 * (run_hi - run_lo + 1), _MIN_BLOCK_COVER)
        k = 0
        for e in range(digits - 1, -1, -1):
            size = 10**e
            if (run_hi // size - run_lo // size + 1) * size <= budget:
                k = e
                break
        size = 10**k
        for block in range(run_lo // size, run_hi // size + 1):
            first, last = block * size, block * size + size - 1
            code = f"{first:0{digits}d}"
            stem = code[: digits - k] if k else code
            out.append((f"{ARCHIVED_HOST}{_PATH_PREFIX[kind]}{stem}", max(first, run_lo), min(last, run_hi)))
    return out


def order_captures(captures: list[Capture], policy: CapturePolicy) -> list[Capture]:
    """An id's captures, the one to try first first: newest (default) or oldest by
    timestamp; a crawl id puts that crawl's captures first, newest first."""
    if policy == OLDEST:
        return sorted(captures, key=lambda c: c.timestamp)
    ordered = sorted(captures, key=lambda c: c.timestamp, reverse=True)
    if policy not in (NEWEST, OLDEST):
        ordered.sort(key=lambda c: c.crawl != policy)  # stable: newest first within each group
    return ordered


def usable_index_line(capture: Capture) -> bool:
    """A capture worth fetching: an HTML 200 (the status filter may not have been applied)."""
    mime = (capture.mime or "").lower()
    return capture.status == 200 and (not mime or "html" in mime)


def normalise_digest(digest: str | None) -> str:
    value = (digest or "").strip()
    if value.lower().startswith("sha1:"):
        value = value[5:]
    return value.upper()


def payload_digest(payload: bytes) -> str:
    """The index's digest of a payload: base32 of its SHA-1 (as WARC-Payload-Digest)."""
    return base64.b32encode(hashlib.sha1(payload).digest()).decode("ascii")


# --- one archived record ------------------------------------------------------------------


@dataclass
class ArchivedRecord:
    """An archived HTTP response as stored: ``payload`` is what the digest covers,
    ``body`` the page (de-chunked and decompressed when the archive kept the wire form)."""

    target_uri: str
    warc_date: str
    http_status: int | None
    headers: dict[str, str]  # lower-case names
    payload: bytes
    body: bytes


class RecordError(ValueError):
    """A fetched capture that is not one readable response record."""


def read_warc_record(member: bytes, max_bytes: int) -> ArchivedRecord:
    """Read the gzip member of one capture (a WARC response record, or an ARC v1
    record); raises RecordError for anything else (a revisit, a truncated member...)."""
    inflater = zlib.decompressobj(31)
    try:
        data = inflater.decompress(member, max_bytes + 1)
    except zlib.error as exc:
        raise RecordError(f"not a gzip member: {exc}") from None
    if len(data) > max_bytes:
        raise RecordError(f"record inflates to over {max_bytes:,} bytes")
    if not inflater.eof:
        raise RecordError("truncated gzip member")
    if data.startswith(b"WARC/"):
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            raise RecordError("WARC header block has no end")
        warc_headers = _header_lines(data[:head_end].split(b"\r\n")[1:])
        if warc_headers.get("warc-type") != "response":
            raise RecordError(f"WARC record of type {warc_headers.get('warc-type')!r}, not a response")
        start = head_end + 4
        try:
            length = int(warc_headers.get("content-length", ""))
        except ValueError:
            raise RecordError("WARC record without a Content-Length") from None
        block = data[start : start + length]
        if len(block) < length:
            raise RecordError("WARC record shorter than its Content-Length")
        target, date = warc_headers.get("warc-target-uri", ""), warc_headers.get("warc-date", "")
    else:  # ARC v1: "URL IP date mime length\n" then the HTTP response
        line_end = data.find(b"\n")
        fields = data[:line_end].decode("latin-1").split(" ")
        if line_end < 0 or len(fields) < 5:
            raise RecordError("neither a WARC nor an ARC record")
        target, date = fields[0], fields[2]
        block = data[line_end + 1 : line_end + 1 + int(fields[-1])]
    return _http_response(block, target, date, max_bytes)


def _http_response(block: bytes, target: str, date: str, max_bytes: int) -> ArchivedRecord:
    head_end = block.find(b"\r\n\r\n")
    sep = 4
    if head_end < 0:
        head_end, sep = block.find(b"\n\n"), 2
    if head_end < 0 or not block.startswith(b"HTTP/"):
        raise RecordError("record holds no HTTP response")
    lines = block[:head_end].replace(b"\r\n", b"\n").split(b"\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise RecordError(f"bad HTTP status line {lines[0][:80]!r}") from None
    headers = _header_lines(lines[1:])
    payload = block[head_end + sep :]
    body = payload
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    coding = headers.get("content-encoding", "").lower().strip()
    if coding in ("gzip", "x-gzip", "deflate"):
        try:
            inflater = zlib.decompressobj(31 if "gzip" in coding else zlib.MAX_WBITS)
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise RecordError(f"stored body does not inflate ({coding}): {exc}") from None
        if len(body) > max_bytes:
            raise RecordError(f"body inflates to over {max_bytes:,} bytes")
    return ArchivedRecord(target, date, status, headers, payload, body)


def _header_lines(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in lines:
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep:
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return b"".join(out) + data[pos:]  # not chunked after all: keep what is there
        try:
            size = int(data[pos:line_end].split(b";")[0], 16)
        except ValueError:
            return data  # the header lied: the payload was stored de-chunked
        if size == 0:
            return b"".join(out)
        out.append(data[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2
