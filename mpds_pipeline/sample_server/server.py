"""The sample IMDb HTTP server: generated pages, images, robots.txt, injected faults.

It runs in a background thread (``with SampleImdbServer() as server: ...``) or in the
foreground (``run_sample_server``), and logs every request with a monotonic time stamp
so that tests can assert politeness as the server saw it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import socket
import struct
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from . import wikimedia
from .archives import ArchiveEmulator
from .content import sample_title
from .faults import FaultInjector, FaultPlan, FaultRule
from .images import decode_token, render_jpeg
from .older_pages import layout_for_year
from .omdb import OmdbEmulator
from .pages import ROBOTS_TXT, challenge_page, not_found_page, render_gallery, render_person, render_title

_TITLE_RE = re.compile(r"^/title/tt(\d{7,9})/?$")
# The "combined details" view IMDb served until about 2016, in its 2006-2016 layout.
_COMBINED_RE = re.compile(r"^/title/tt(\d{7,9})/combined/?$")
_NAME_RE = re.compile(r"^/name/nm(\d{7,9})/?$")
_GALLERY_RE = re.compile(r"^/name/nm(\d{7,9})/mediaindex/?$")
_IMAGE_RE = re.compile(r"^/images/M/(?P<token>[^./]+)\._V1_(?P<ops>[^/]*)\.jpg$")
# Posters whose rights holder opted out of AI training (title id -> response headers):
# the demo's range holds one, so a download shows the refusal.
NOAI_POSTERS: dict[int, tuple[tuple[str, str], ...]] = {101: (("X-Robots-Tag", "noai"),)}


@dataclass(frozen=True)
class RequestRecord:
    t: float  # time.monotonic() when the request line arrived
    path: str
    status: int | None  # None: the connection was reset
    fault: str | None


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


_LATIN1_MARK = b"charset=iso-8859-1"


def _html_type(body: bytes) -> str:
    """The Content-Type of a page: pages of 2006-2010 layouts are iso-8859-1."""
    return "text/html; charset=iso-8859-1" if _LATIN1_MARK in body[:1024] else _Reply.content_type


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server
    # Headers and body leave in two writes: with Nagle on, a keep-alive client's delayed
    # ACK holds the body back 40 ms per response.
    disable_nagle_algorithm = True
    server_version = "SampleIMDb/1.0"

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass  # the request log is kept in memory instead

    def do_GET(self):  # noqa: N802 - the stdlib's name
        app: SampleImdbServer = self.server.app  # type: ignore[attr-defined]
        arrived = time.monotonic()
        target = urlsplit(self.path)
        path = target.path
        if app.on_request is not None:
            app.on_request(self.path, self.headers)
        rule = app.injector.choose(path)
        kind = rule.kind if rule else None

        def log(status: int | None) -> None:
            # Logged before the reply goes out, so a client that has its answer can
            # rely on the log already holding the request.
            app._log(RequestRecord(arrived, path, status, kind))

        self._answer(app, path, target.query, rule, log)

    def _answer(self, app: SampleImdbServer, path: str, query: str, rule: FaultRule | None, log) -> None:
        kind = rule.kind if rule else None
        if kind == "reset":
            log(None)
            # SO_LINGER 0 makes close() send a TCP reset instead of a clean FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if kind == "slow":
            time.sleep(rule.delay_s)
        if kind in ("gzip_bomb", "huge", "huge_chunked"):
            log(200)
            self._send_hostile(kind, int(rule.size_mb * _MIB))
            return
        if kind == "429":
            reply = _Reply(429, b"Too Many Requests", "text/plain", (("Retry-After", rule.retry_after),))
        elif kind in ("500", "503"):
            reply = _Reply(int(kind), b"Server error", "text/plain")
        elif kind == "waf":
            reply = _Reply(202, challenge_page(), headers=(("x-amzn-waf-action", "challenge"),))
        elif kind == "waf403":
            reply = _Reply(403, b"<html><body>Forbidden</body></html>", headers=(("x-amzn-waf-action", "block"),))
        elif kind == "waf200":
            reply = _Reply(200, challenge_page())
        else:
            reply = app.route(path, f"http://{self.headers.get('Host', app.address)}", query, self.headers)
        log(reply.status)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        body = reply.body
        if kind == "truncate":
            # Promise more than is sent, then hang up: the client sees an incomplete body.
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_hostile(self, kind: str, size: int) -> None:
        """A body built to exhaust a client's memory; the client may hang up at any point."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if kind == "gzip_bomb":
            body = gzip_bomb(size)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
        elif kind == "huge":
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        zeros = bytes(_MIB)
        try:
            if kind == "gzip_bomb":
                self.wfile.write(body)
                return
            for start in range(0, size, _MIB):
                piece = zeros[: min(_MIB, size - start)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if kind == "huge_chunked" else piece)
            if kind == "huge_chunked":
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client refused the rest: what it should do


_MIB = 1 << 20


@functools.lru_cache(maxsize=2)
def gzip_bomb(inflated_size: int) -> bytes:
    """One gzip member that inflates to ``inflated_size`` zero bytes (a multiple of 1 MiB),
    about 1/1000 of that: the same fully flushed deflate block repeated (its cost: docs/benchmarks.md)."""
    chunks = max(1, inflated_size // _MIB)
    zeros = bytes(_MIB)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, self-contained
    crc = 0
    for _ in range(chunks):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    final_empty_block = b"\x03\x00"
    return header + block * chunks + final_empty_block + struct.pack("<II", crc, (chunks * _MIB) & 0xFFFFFFFF)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # clients that time out or hang up are expected here


class SampleImdbServer:
    """A loopback stand-in for www.imdb.com; a context manager running in a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | str | None = None,
        seed: int = 0,
        padding_kb: int = 64,
        dataset_titles: tuple[int, int] = (1, 1000),
        robots_txt: bytes | None = ROBOTS_TXT,
        robots_status: int = 200,
        on_request: Callable[[str, Mapping[str, str]], None] | None = None,
        layout_year: int | None = None,
    ):
        """``robots_status``: what /robots.txt answers (with ``robots_txt`` as its body);
        ``on_request(target, headers)`` sees every request as it arrives (tests);
        ``layout_year``: serve title and person pages in the layout IMDb had that year
        (older_pages.layout_for_year), as an archive of that year would; None: today's."""
        self.seed = seed
        self.layout_year = layout_year
        self.robots_txt = robots_txt or b""
        self.robots_status = robots_status
        self.on_request = on_request
        # Other services this server stands in for (archives, APIs): each takes
        # (server, path, query, headers) and returns a reply, or None when the path is not its.
        self.extra_routes: list[Callable[[SampleImdbServer, str, str, Mapping[str, str]], _Reply | None]] = []
        self.archives = ArchiveEmulator(self)  # /cc-index, /cc-data, /wayback (archives.py)
        self.extra_routes.append(self.archives.route)
        self.omdb = OmdbEmulator()  # /omdb/: keys, daily limit and the ids asked are its attributes
        self.extra_routes.append(self.omdb.route)
        self.extra_routes.append(wikimedia.route)
        self.dataset_titles = dataset_titles
        # AI opt-out signals: extra headers on some posters, and /.well-known/tdmrep.json (None: 404)
        self.poster_optouts: dict[int, tuple[tuple[str, str], ...]] = dict(NOAI_POSTERS)
        self.tdmrep_json: bytes | None = None
        self.wikimedia_maxlag, self.wikimedia_retry_after = 0, "1"  # next n Wikimedia API calls answer maxlag
        self._datasets: dict[str, bytes] | None = None
        self._datasets_lock = threading.Lock()
        self.padding_kb = padding_kb
        self.injector = FaultInjector(_as_plan(faults), seed)
        self._records: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------
    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> SampleImdbServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="sample-imdb", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def __enter__(self) -> SampleImdbServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- faults and the request log ------------------------------------------------
    def set_faults(self, faults: FaultPlan | str | None) -> None:
        self.injector.set_plan(_as_plan(faults))

    def _log(self, record: RequestRecord) -> None:
        with self._records_lock:
            self._records.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._records_lock:
            return list(self._records)

    @property
    def request_log(self) -> dict[str, list[float]]:
        """Path -> arrival times (monotonic seconds) of every request for it."""
        log: dict[str, list[float]] = defaultdict(list)
        for record in self.requests:
            log[record.path].append(record.t)
        return dict(log)

    def request_count(self, path_prefix: str = "") -> int:
        return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def clear_log(self) -> None:
        with self._records_lock:
            self._records.clear()

    def max_requests_in_any_window(self, seconds: float = 1.0, path_prefix: str = "") -> int:
        """The most requests that arrived within any window of ``seconds``, wherever it starts."""
        times = sorted(r.t for r in self.requests if r.path.startswith(path_prefix))
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def dataset_files(self) -> dict[str, bytes]:
        """IMDb-format dataset files (title.basics.tsv.gz, ...) of the generated titles,
        served under /datasets/; built once, on first request."""
        with self._datasets_lock:
            if self._datasets is None:
                self._datasets = _dataset_files(self.dataset_titles, self.seed)
            return self._datasets

    # --- content ---------------------------------------------------------------------
    def _year_layout(self, kind: str) -> str | None:
        return None if self.layout_year is None else layout_for_year(kind, self.layout_year)

    def route(self, path: str, base: str, query: str = "", headers: Mapping[str, str] | None = None) -> _Reply:
        for extra in self.extra_routes:
            reply = extra(self, path, query, headers or {})
            if reply is not None:
                return reply
        if path == "/robots.txt":
            return _Reply(self.robots_status, self.robots_txt, "text/plain")
        if match := _TITLE_RE.match(path) or _COMBINED_RE.match(path):
            title_id = int(match.group(1))
            truth = sample_title(title_id, self.seed)
            if truth["status"] == "redirect":
                return _Reply(301, b"", headers=(("Location", f"/title/tt{truth['redirect_to']:07d}/"),))
            if truth["status"] == "missing":
                return _Reply(200 if truth.get("soft_404") else 404, not_found_page())
            layout = "combined" if match.re is _COMBINED_RE else self._year_layout("title")
            body = render_title(title_id, self.seed, base, self.padding_kb, layout=layout)
            return _Reply(200, body, _html_type(body))
        if match := _NAME_RE.match(path):
            layout = self._year_layout("person")
            body = render_person(int(match.group(1)), self.seed, base, self.padding_kb // 2, layout=layout)
            return _Reply(200, body, _html_type(body)) if body is not None else _Reply(404, not_found_page())
        if match := _GALLERY_RE.match(path):
            body = render_gallery(int(match.group(1)), self.seed, base, self.padding_kb // 4)
            return _Reply(200, body) if body is not None else _Reply(404, not_found_page())
        if path.startswith("/datasets/"):
            body = self.dataset_files().get(path.rsplit("/", 1)[-1])
            if body is not None:
                return _Reply(200, body, "application/gzip", (("Last-Modified", "Thu, 26 Nov 2026 00:00:00 GMT"),))
        if path == "/.well-known/tdmrep.json" and self.tdmrep_json is not None:
            return _Reply(200, self.tdmrep_json, "application/json")
        if match := _IMAGE_RE.match(path):
            jpeg = render_jpeg(match.group("token"), match.group("ops"))
            if jpeg is not None:
                decoded = decode_token(match.group("token"))
                optout = self.poster_optouts.get(decoded[1], ()) if decoded and decoded[0] == "t" else ()
                return _Reply(200, jpeg, "image/jpeg", optout)
        return _Reply(404, not_found_page())


def _dataset_files(titles: tuple[int, int], seed: int) -> dict[str, bytes]:
    import tempfile

    from .content import PERSON_ID_RANGE
    from .datasets import write_sample_datasets

    with tempfile.TemporaryDirectory() as folder:
        written = write_sample_datasets(
            folder, range(titles[0], titles[1] + 1), range(PERSON_ID_RANGE[0], PERSON_ID_RANGE[1] + 1), seed
        )
        return {Path(p).name: Path(p).read_bytes() for p in written.files.values()}


def _as_plan(faults: FaultPlan | str | None) -> FaultPlan:
    if isinstance(faults, FaultPlan):
        return faults
    return FaultPlan.parse(faults)


def run_sample_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    faults_spec: str | None = None,
    seed: int = 0,
    padding_kb: int = 64,
    layout_year: int | None = None,
    omdb_daily_limit: int | None = None,
    cc_index_503: tuple[int, ...] = (),
) -> None:
    """Serve in the foreground until interrupted; prints the base URL first."""
    server = SampleImdbServer(host, port, faults_spec, seed, padding_kb, layout_year=layout_year)
    server.omdb.daily_limit = omdb_daily_limit
    server.archives.index_503_requests = set(cc_index_503)
    print(f"Sample IMDb server at {server.base_url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mpds sample-server", description="Serve generated IMDb-like pages on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--faults", default=None, help="fault rules, e.g. '429,rate=0.05;waf,ids=100-120'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--padding-kb", type=int, default=64, help="inert markup added to each title page")
    parser.add_argument(
        "--layout-year", type=int, default=None, help="serve pages in IMDb's layout of that year (2006-2025)"
    )
    parser.add_argument(
        "--omdb-daily-limit",
        type=int,
        default=None,
        help='/omdb/ answers "Request limit reached!" after this many requests per key (default: no limit)',
    )
    parser.add_argument(
        "--cc-index-503",
        default="",
        help="/cc-index/ requests (by number, e.g. '2,5') answered 503 'Please reduce your request rate.'",
    )
    args = parser.parse_args(argv)
    run_sample_server(
        args.host,
        args.port,
        args.faults,
        args.seed,
        args.padding_kb,
        args.layout_year,
        args.omdb_daily_limit,
        tuple(int(n) for n in args.cc_index_503.split(",") if n.strip()),
    )
    return 0
