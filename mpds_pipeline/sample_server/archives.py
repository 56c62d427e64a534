"""Common Crawl and the Wayback Machine, emulated on the sample server from its own pages.

Every SampleImdbServer answers the archives' index and data routes, with captures
planned by id so that each hard case (a WAF capture, a wrong digest, a capture in one
archive only, none at all, older layouts) appears in any small range. The routes and
the capture plan: docs/sources-archives.md.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from .content import sample_person, sample_title
from .older_pages import archive_layout
from .pages import challenge_page, render_person, render_title

CRAWLS = (  # newest first, as collinfo.json lists them
    ("CC-MAIN-2024-10", "2024021", "February/March 2024 Index"),
    ("CC-MAIN-2019-04", "2019011", "January 2019 Index"),
    ("CC-MAIN-2013-20", "2013052", "Summer 2013 Index"),
)
BLOCK = 100  # ids per emulated WARC file
WAYBACK_YEAR = "2011"
_INDEX_RE = re.compile(r"^/cc-index/(CC-MAIN-[\w-]+?)-index$")
_WAYBACK_RAW_RE = re.compile(r"^/wayback/web/(\d{14})id_/(.+)$")
_ID_RE = {"title": re.compile(r"/title/tt(\d{7,9})"), "person": re.compile(r"/name/nm(\d{7,9})")}


def _b32sha1(data: bytes) -> str:
    return base64.b32encode(hashlib.sha1(data).digest()).decode()


def capture_plan(kind: str, item_id: int, seed: int = 0) -> dict:
    """Where the sample archives hold ``kind`` ``item_id``: {"crawls": [(crawl, flag)],
    "wayback": bool}; flag None (a good capture), "waf" or "bad_digest"."""
    truth = sample_title(item_id, seed) if kind == "title" else sample_person(item_id, seed)
    if truth["status"] != "ok":
        return {"crawls": [], "wayback": False}
    d = item_id % 10
    newest, middle, oldest = (c[0] for c in CRAWLS)
    if d == 8:
        return {"crawls": [], "wayback": False}
    if d == 6:
        return {"crawls": [], "wayback": True}
    if d == 2:
        return {"crawls": [(newest, "waf"), (middle, None)], "wayback": False}
    if d == 4:
        return {"crawls": [(newest, "bad_digest"), (newest, None)], "wayback": False}
    crawls = [(newest, None)] + ([(oldest, None)] if d in (0, 5) else [])
    return {"crawls": crawls, "wayback": d in (0, 1)}


def _timestamp(prefix: str, item_id: int, n: int) -> str:
    # Later captures of one id in one crawl get later days: n counts back from the newest.
    day = 9 - n
    return f"{prefix}{day}{(item_id % 24):02d}{(item_id % 60):02d}{(item_id * 7 % 60):02d}"


@dataclass
class _Capture:
    kind: str
    id: int
    url: str
    timestamp: str
    digest: str
    offset: int = 0
    length: int = 0
    filename: str = ""
    status: int = 200


@dataclass(eq=False)
class ArchiveEmulator:
    """The archive services of one sample server; settings a test may change."""

    server: object
    page_lines: int = 20  # index lines per CDX page (Common Crawl's are thousands)
    index_503_requests: set[int] = field(default_factory=set)  # index request numbers answered 503
    index_504_requests: set[int] = field(default_factory=set)  # ... answered 504 (the gateway's HTML page)
    index_requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _build_lock: threading.Lock = field(default_factory=threading.Lock)
    _files: dict = field(default_factory=dict)
    # Crawls published while the server runs (add_crawl), newest first: id -> (prefix, name, kind, ids)
    added_crawls: dict = field(default_factory=dict)

    def crawls(self) -> list[tuple[str, str, str]]:
        """(id, timestamp prefix, name) of every crawl collinfo.json lists, newest first."""
        added = [(crawl, prefix, name) for crawl, (prefix, name, _, _) in reversed(self.added_crawls.items())]
        return added + list(CRAWLS)

    def add_crawl(
        self, crawl: str, ids=None, kind: str = "title", name: str | None = None, prefix: str = "2026021"
    ) -> None:
        """Publish a new crawl (listed first in collinfo.json from now on) holding a good
        capture, in today's layout, of each of ``ids`` whose sample page exists: what a
        new Common Crawl release brings for ids the older crawls missed. ``ids`` None:
        every id up to 1,000 that no crawl or the Wayback Machine holds."""
        if ids is None:
            ids = [i for i in range(1, 1001) if _captured_nowhere(kind, i, self.server.seed)]
        with self._build_lock:
            self.added_crawls[crawl] = (prefix, name or f"{crawl} Index", kind, frozenset(ids))

    # --- the emulated contents -----------------------------------------------------------
    def _base(self) -> str:
        return self.server.base_url

    def _layout(self, kind: str, item_id: int, year: int | None) -> str | None:
        """The layout of a capture made in ``year``: IMDb's of that year (a quarter of the
        titles up to 2014 as the /combined view); None: today's (the newest crawl)."""
        return None if year is None else archive_layout(kind, item_id, year, self.server.seed)

    def _page(self, kind: str, item_id: int, year: int | None = None) -> bytes | None:
        seed, padding, layout = self.server.seed, self.server.padding_kb, self._layout(kind, item_id, year)
        if kind == "title":
            return render_title(item_id, seed, self._base(), padding, layout=layout)
        return render_person(item_id, seed, self._base(), padding // 2, layout=layout)

    def _url(self, kind: str, item_id: int, year: int | None) -> str:
        combined = self._layout(kind, item_id, year) == "combined"
        return _page_url(kind, item_id) + ("combined" if combined else "")

    def warc_file(self, crawl: str, kind: str, block: int) -> tuple[str, bytes, tuple[_Capture, ...]]:
        """(filename, bytes, index captures) of the WARC holding ``kind`` ids of ``block``
        (built on first use, then kept for the server's life)."""
        key = (crawl, kind, block)
        with self._build_lock:
            if key not in self._files:
                self._files[key] = self._build_warc(crawl, kind, block)
            return self._files[key]

    def _build_warc(self, crawl: str, kind: str, block: int) -> tuple[str, bytes, tuple[_Capture, ...]]:
        prefix = {c[0]: c[1] for c in self.crawls()}[crawl]
        filename = (
            f"crawl-data/{crawl}/segments/1700000000000.{block:02d}/warc/"
            f"{crawl}-20240000000000-{kind}-{block:05d}.warc.gz"
        )
        out, captures = bytearray(), []
        added = self.added_crawls.get(crawl)
        year = None if crawl == CRAWLS[0][0] or added else int(prefix[:4])
        for item_id in range(max(1, block * BLOCK), (block + 1) * BLOCK):
            if added:
                entries = [None] if kind == added[2] and item_id in added[3] and self._page(kind, item_id) else []
            else:
                entries = [flag for c, flag in capture_plan(kind, item_id, self.server.seed)["crawls"] if c == crawl]
            for n, flag in enumerate(entries):
                page = challenge_page() if flag == "waf" else self._page(kind, item_id, year)
                if page is None:
                    continue
                url = self._url(kind, item_id, year)
                stamp = _timestamp(prefix, item_id, n)
                member = _warc_member(url, stamp, page)
                digest = _b32sha1(b"tampered" + page) if flag == "bad_digest" else _b32sha1(page)
                captures.append(_Capture(kind, item_id, url, stamp, digest, len(out), len(member), filename))
                out += member
                if kind == "title" and n == 0:
                    url = _page_url(kind, item_id)
                    sub = _warc_member(url + "fullcredits", stamp, b"<html>full credits</html>")
                    captures.append(
                        _Capture(
                            kind, item_id, url + "fullcredits", stamp, _b32sha1(b"x"), len(out), len(sub), filename
                        )
                    )
                    out += sub
        return filename, bytes(out), tuple(captures)

    def files_by_name(self, filename: str) -> bytes | None:
        match = re.match(r"^crawl-data/(CC-MAIN-[\w-]+?)/segments/.+-(title|person)-(\d{5})\.warc\.gz$", filename)
        if not match:
            return None
        return self.warc_file(match.group(1), match.group(2), int(match.group(3)))[1]

    def index_lines(self, crawl: str, url_prefix: str, only_200: bool) -> list[_Capture]:
        kind = "title" if "/title/tt" in url_prefix else "person" if "/name/nm" in url_prefix else None
        if kind is None or "imdb.com/" not in url_prefix:
            return []
        stem = url_prefix.split("imdb.com", 1)[1]
        digits = re.sub(r"^/(title/tt|name/nm)", "", stem)
        width = 7 if not digits or digits[0] == "0" or len(digits) < 8 else 8
        lo = int(digits.ljust(width, "0") or 0)
        hi = int(digits.ljust(width, "9") or 0)
        lines: list[_Capture] = []
        for block in range(lo // BLOCK, hi // BLOCK + 1):
            for capture in self.warc_file(crawl, kind, block)[2]:
                path = capture.url.split("imdb.com", 1)[1]
                if path.startswith(stem) and (capture.status == 200 or not only_200):
                    lines.append(capture)
        return sorted(lines, key=lambda c: (c.url, c.timestamp))

    # --- routes ------------------------------------------------------------------------
    def route(self, server, path: str, query: str, headers: Mapping[str, str]):
        from .server import _Reply

        if path.startswith("/cc-index/"):
            with self._lock:
                self.index_requests += 1
                number = self.index_requests
            if number in self.index_503_requests:
                return _Reply(503, b"Please reduce your request rate.", "text/plain")
            if number in self.index_504_requests:
                return _Reply(504, _GATEWAY_TIMEOUT, "text/html")
            return self._index(path, query, _Reply)
        if path.startswith("/cc-data/"):
            return self._data(path[len("/cc-data/") :], headers, _Reply)
        if path.startswith("/wayback/"):
            return self._wayback(path, query, _Reply)
        return None

    def _index(self, path: str, query: str, reply):
        if path == ADD_CRAWL_PATH:
            # The sample server's own control (no such route on Common Crawl): publish a crawl
            # while it runs, so a walk-through can show the new-crawl sensor at work.
            params = parse_qs(query)
            crawl = params.get("id", ["CC-MAIN-2026-08"])[0]
            if not re.fullmatch(r"CC-MAIN-\d{4}-\d{2}", crawl):
                return reply(400, b'{"message": "id must look like CC-MAIN-2026-08"}', "application/json")
            self.add_crawl(crawl)
            return reply(200, json.dumps({"added": crawl}).encode(), "application/json")
        if path == "/cc-index/collinfo.json":
            base = f"{self._base()}/cc-index"
            listing = [
                {"id": crawl, "name": name, "timegate": f"{base}/{crawl}/", "cdx-api": f"{base}/{crawl}-index"}
                for crawl, _, name in self.crawls()
            ]
            return reply(200, json.dumps(listing, indent=2).encode(), "application/json")
        match = _INDEX_RE.match(path)
        if not match or match.group(1) not in {c[0] for c in self.crawls()}:
            return reply(404, b'{"message": "No such collection"}', "application/json; charset=utf-8")
        params = parse_qs(query)
        url = params.get("url", [""])[0]
        if not url.endswith("*"):
            return reply(400, b'{"message": "only prefix queries are emulated"}', "application/json; charset=utf-8")
        only_200 = "status:200" in params.get("filter", [])
        lines = self.index_lines(match.group(1), url[:-1], only_200)
        pages = max(1, -(-len(lines) // self.page_lines))
        if params.get("showNumPages", [""])[0] == "true":
            body = json.dumps({"pages": pages, "pageSize": 5, "blocks": len(lines)}).encode()
            return reply(200, body, "text/x-cdxj")
        page = int(params.get("page", ["0"])[0])
        if page >= pages:
            message = f"Page {page} invalid: First Page is 0, Last Page is {pages - 1}"
            return reply(400, json.dumps({"message": message}).encode(), "application/json; charset=utf-8")
        chosen = lines[page * self.page_lines : (page + 1) * self.page_lines]
        if not chosen:
            message = json.dumps({"message": f"No Captures found for: {url}"}).encode()
            return reply(404, message, "application/json; charset=utf-8")
        body = "".join(json.dumps(_cdx_line(c)) + "\n" for c in chosen).encode()
        return reply(200, body, "text/x-ndjson")

    def _data(self, filename: str, headers: Mapping[str, str], reply):
        data = self.files_by_name(unquote(filename))
        if data is None:
            return reply(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        match = re.match(r"^bytes=(\d+)-(\d+)$", headers.get("Range", "") or "")
        if not match:
            return reply(200, data, "application/octet-stream")
        start, end = int(match.group(1)), min(int(match.group(2)), len(data) - 1)
        if start > end:
            return reply(416, b"", "application/octet-stream", (("Content-Range", f"bytes */{len(data)}"),))
        content_range = (("Content-Range", f"bytes {start}-{end}/{len(data)}"),)
        return reply(206, data[start : end + 1], "application/octet-stream", content_range)

    # --- the Wayback Machine -----------------------------------------------------------
    def wayback_captures(self, url_prefix: str) -> list[tuple[str, str, str, str]]:
        """(timestamp, original, mime, digest) rows for a prefix (pages) or one image URL."""
        if "/images/M/" in url_prefix:
            return [(f"{WAYBACK_YEAR}0601000000", url_prefix.rstrip("*"), "image/jpeg", "")]
        kind = "title" if "/title/tt" in url_prefix else "person" if "/name/nm" in url_prefix else None
        if kind is None:
            return []
        stem = url_prefix.rstrip("*").split("imdb.com", 1)[-1]
        digits = re.sub(r"^/(title/tt|name/nm)", "", stem)
        lo, hi = int(digits.ljust(7, "0") or 0), int(digits.ljust(7, "9") or 0)
        rows = []
        for item_id in range(max(1, lo), hi + 1):
            if not capture_plan(kind, item_id, self.server.seed)["wayback"]:
                continue
            page = self._page(kind, item_id, int(WAYBACK_YEAR))
            if page is not None:
                url = self._url(kind, item_id, int(WAYBACK_YEAR))
                rows.append((self._wayback_stamp(item_id), url, "text/html", _b32sha1(page)))
        return rows

    @staticmethod
    def _wayback_stamp(item_id: int) -> str:
        return f"{WAYBACK_YEAR}0{1 + item_id % 9}{1 + item_id % 28:02d}120000"

    def _wayback(self, path: str, query: str, reply):
        if path == "/wayback/cdx/search/cdx":
            params = parse_qs(query)
            rows = self.wayback_captures(params.get("url", [""])[0])
            limit = int(params.get("limit", ["0"])[0] or 0)
            start = int(params.get("resumeKey", ["0"])[0] or 0)
            header = ["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]
            table = [[_urlkey(o), t, o, m, "200", d, "1000"] for t, o, m, d in rows]
            if limit < 0:
                table = table[limit:]
            elif limit > 0:
                chunk = table[start : start + limit]
                if start + limit < len(table) and params.get("showResumeKey", [""])[0] == "true":
                    chunk += [[], [str(start + limit)]]
                table = chunk
            body = json.dumps([header, *table]).encode() if table else b"[]"
            return reply(200, body, "application/json")
        match = _WAYBACK_RAW_RE.match(path)
        if not match:
            return reply(404, b"not archived", "text/html")
        original = unquote(match.group(2))
        if "/images/M/" in original:
            from .images import render_jpeg

            token_ops = original.rsplit("/images/M/", 1)[1]
            token, _, ops = token_ops.partition("._V1_")
            jpeg = render_jpeg(token, ops.removesuffix(".jpg"))
            return reply(200, jpeg, "image/jpeg") if jpeg else reply(404, b"not archived", "text/html")
        for kind, pattern in _ID_RE.items():
            found = pattern.search(original)
            if found and capture_plan(kind, int(found.group(1)), self.server.seed)["wayback"]:
                page = self._page(kind, int(found.group(1)), int(WAYBACK_YEAR))
                if page is not None:
                    return reply(200, page, _content_type(page))
        return reply(404, b"not archived", "text/html")


# What Common Crawl's index answered when its backend timed out (a recorded answer's shape).
_GATEWAY_TIMEOUT = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


ADD_CRAWL_PATH = "/cc-index/_add-crawl"


def _captured_nowhere(kind: str, item_id: int, seed: int) -> bool:
    truth = sample_title(item_id, seed) if kind == "title" else sample_person(item_id, seed)
    plan = capture_plan(kind, item_id, seed)
    return truth["status"] == "ok" and not plan["crawls"] and not plan["wayback"]


def _page_url(kind: str, item_id: int) -> str:
    return (
        f"https://www.imdb.com/title/tt{item_id:07d}/"
        if kind == "title"
        else f"https://www.imdb.com/name/nm{item_id:07d}/"
    )


def _urlkey(url: str) -> str:
    return "com,imdb)" + url.split("imdb.com", 1)[-1].rstrip("/") if "imdb.com" in url else url


def _cdx_line(c: _Capture) -> dict:
    return {
        "urlkey": _urlkey(c.url),
        "timestamp": c.timestamp,
        "url": c.url,
        "mime": "text/html",
        "mime-detected": "text/html",
        "status": str(c.status),
        "digest": c.digest,
        "length": str(c.length),
        "offset": str(c.offset),
        "filename": c.filename,
        "languages": "eng",
        "encoding": "UTF-8",
    }


def _content_type(page: bytes) -> str:
    # Pages of the 2006-2010 layouts are iso-8859-1, as they were served then.
    return "text/html; charset=iso-8859-1" if b"charset=iso-8859-1" in page[:1024] else "text/html; charset=utf-8"


def _warc_member(url: str, stamp: str, page: bytes) -> bytes:
    """One gzip member holding one WARC response record, as Common Crawl writes them."""
    http = (
        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
        b"X-Crawler-Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % (_content_type(page).encode(), len(page))
    ) + page
    date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:{stamp[12:14]}Z"
    headers = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Date: {date}\r\nWARC-Target-URI: {url}\r\n"
        f"WARC-Payload-Digest: sha1:{_b32sha1(page)}\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http)}\r\n\r\n"
    ).encode()
    return gzip.compress(headers + http + b"\r\n\r\n", compresslevel=6, mtime=0)
