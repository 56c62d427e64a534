"""The polite async HTTP client every IMDb request goes through.

Politeness is enforced here, once, for pages, images and robots.txt alike: a global
sliding-window rate limit (across all concurrent requests and retries), bounded
concurrency, robots.txt, a descriptive User-Agent and a host allowlist. Retries use
exponential backoff with jitter on 408/429/5xx and connection errors, honouring
``Retry-After``. An AWS WAF challenge (``waf.is_waf_challenge``) is never retried: it is
returned as is so the crawl can classify it as blocked and stop.
``stop()`` makes sure no further request leaves, even one already waiting for its rate
slot (the crawl calls it on the N-th consecutive block). robots.txt's ``Crawl-delay``
lowers the rate: the effective rate is min(``rate_per_second``, 1/Crawl-delay).

Every body is read within a cap (``max_body_bytes``, or ``fetch(max_bytes=...)``): a
Content-Length over it is refused before the body is read, at most cap+1 bytes are read
otherwise, and gzip/deflate are inflated with an output limit of the cap, so one
response never holds more than about twice the cap in memory. A body over the cap is
``FetchResponse.too_large``, with the reason in ``error``; it is not retried.

The rate limit counts a request from its send until one second after its response
headers arrive (see ratelimit.py), so it holds as the server counts; with real latency
the achieved rate is a little under ``rate_per_second``.

Scheduling (limit, retries, robots, redirects) runs on the event loop, but each HTTP
exchange is a blocking ``http.client`` call on one of ``concurrency`` sender threads,
over keep-alive connections (see _Connections). Measured on loopback, CPU per 110 KB
image: httpx's async stack about 3 ms, much of it waiting for the GIL behind the image
decoders on every socket call; sync httpx 1.3 ms; urllib3 0.6 ms; http.client 0.3 ms.
A blocking read holds no GIL while it waits. Environment proxy settings are not used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import http.client
import random
import select
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

import certifi

from .ids import DEFAULT_BASE_URL
from .ratelimit import RateSlot, SlidingWindowLimiter
from .robots import RobotsRules, rules_from_response
from .waf import is_waf_challenge

DEFAULT_USER_AGENT = (
    "MPDS-pipeline/0.1 (non-commercial research crawler building an open movie-poster "
    "image-text dataset; polite: 1 request/s by default, obeys robots.txt, stops when blocked)"
)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECT_HOPS = 10
# A new step process takes longer than this to start (interpreter, Dagster, the code location):
# a stopped client whose rate window is no longer skips the drain before it closes.
NEW_STEP_MIN_START_S = 1.5
DEFAULT_MAX_BODY_BYTES = 10_000_000  # a modern title page is 0.5-1 MB of HTML


@dataclass
class ClientSettings:
    base_url: str = DEFAULT_BASE_URL
    rate_per_second: float = 1.0  # global across all concurrent requests; <= 0 disables (benchmarks only)
    concurrency: int = 4
    timeout_s: float = 30.0
    max_retries: int = 4  # retries after the first attempt
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    user_agent: str = DEFAULT_USER_AGENT
    extra_allowed_hosts: tuple[str, ...] = (
        "m.media-amazon.com",
        "ia.media-imdb.com",
        "images-na.ssl-images-amazon.com",
    )
    obey_robots: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # per response, after decoding; fetch(max_bytes=) overrides

    def allowed_hosts(self) -> frozenset[str]:
        base_host = (urlsplit(self.base_url).hostname or "").lower()
        return frozenset({base_host, *(h.lower() for h in self.extra_allowed_hosts)})


@dataclass
class FetchResponse:
    url: str
    status_code: int | None
    headers: dict[str, str]  # lower-case keys
    content: bytes
    final_url: str
    attempts: int
    error: str | None = None  # set when there was no usable response after retries
    too_large: bool = False  # the body was over the cap: refused unread or cut off, never retried


class HostNotAllowed(Exception):
    """The URL's host is not on the allowlist; nothing was sent."""


class RobotsDisallowed(Exception):
    """robots.txt disallows the URL for our user agent; nothing was sent for it."""


class ClientStopped(Exception):
    """``stop()`` was called: this request was never sent."""


class BodyTooLarge(Exception):
    """A response body over the cap; raised before more than cap+1 bytes are held."""

    def __init__(self, message: str, status: int, headers: dict[str, str]):
        super().__init__(message)
        self.status, self.headers = status, headers


@dataclass
class _Attempt:
    status_code: int | None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""
    error: str | None = None
    too_large: bool = False


class PoliteClient:
    """Use as ``async with PoliteClient(settings) as client: await client.fetch(url)``."""

    def __init__(self, settings: ClientSettings, *, log: Callable[[str], None] | None = None):
        self.settings = settings
        self.requests_made = 0
        self.stopped = False
        self._log = log
        self._allowed = settings.allowed_hosts()
        self._limiter = SlidingWindowLimiter(settings.rate_per_second)
        self._slots = asyncio.Semaphore(max(1, settings.concurrency))
        self._robots: dict[str, RobotsRules] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._http: _Connections | None = None
        self._senders: concurrent.futures.ThreadPoolExecutor | None = None

    async def __aenter__(self) -> PoliteClient:
        limit = max(1, self.settings.concurrency)
        headers = {
            "User-Agent": self.settings.user_agent,
            "Accept-Language": "en-US,en;q=0.8",
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
        }
        self._http = _Connections(headers, self.settings.timeout_s, max_idle_per_origin=limit)
        # One thread per concurrency slot: a send never queues behind another.
        self._senders = concurrent.futures.ThreadPoolExecutor(max_workers=limit, thread_name_prefix="polite-http")
        return self

    async def __aexit__(self, *exc) -> None:
        # A stopped client's process is going away (its run died, or IMDb blocks): it ends
        # now, unless the window is longer than any new step takes to start (a Crawl-delay).
        if not self.stopped or self._limiter.window_s > NEW_STEP_MIN_START_S:
            await self._limiter.drain()
        if self._senders is not None:
            # Only sends of cancelled fetches can still be running; they end at their timeout.
            self._senders.shutdown(wait=False, cancel_futures=True)
            self._senders = None
        if self._http is not None:
            self._http.close()
            self._http = None

    # --- public --------------------------------------------------------------------
    def check_host(self, url: str) -> None:
        """Raise HostNotAllowed unless ``url`` is http(s) on an allowed host."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or host not in self._allowed:
            raise HostNotAllowed(
                f"refusing {url!r}: host {host or '?'} is not in the allowlist {sorted(self._allowed)}"
            )

    def stop(self) -> None:
        """Send nothing more: a fetch waiting for its turn raises ClientStopped at once (not
        when its turn comes). Requests already on the wire finish (at a rate of 1/s or less
        there is at most one). Event loop only."""
        self.stopped = True
        self._limiter.stop()

    @property
    def rate_per_second(self) -> float:
        """The rate in force: the configured one, lowered by robots.txt's Crawl-delay."""
        return self._limiter.rate_per_second

    async def fetch(self, url: str, *, follow_redirects: bool = False, max_bytes: int | None = None) -> FetchResponse:
        """GET ``url`` politely; redirects are followed only on request, each hop re-checked.
        ``max_bytes`` caps this body (default ``settings.max_body_bytes``)."""
        if self._http is None:
            raise RuntimeError("use PoliteClient as an async context manager")
        self.check_host(url)
        cap = self.settings.max_body_bytes if max_bytes is None else max_bytes
        current, attempts = url, 0
        for _hop in range(MAX_REDIRECT_HOPS + 1):
            unreadable = await self._robots_gate(current)
            if unreadable is not None:
                unreadable.url, unreadable.attempts = url, unreadable.attempts + attempts
                return unreadable
            resp = await self._get_with_retries(current, cap)
            attempts += resp.attempts
            location = resp.headers.get("location")
            if follow_redirects and resp.status_code in REDIRECT_STATUSES and location:
                current = urljoin(current, location)
                self.check_host(current)
                continue
            resp.url, resp.attempts = url, attempts
            return resp
        return FetchResponse(url, None, {}, b"", current, attempts, f"more than {MAX_REDIRECT_HOPS} redirects")

    # --- robots.txt ------------------------------------------------------------------
    async def _robots_gate(self, url: str) -> FetchResponse | None:
        """Raise RobotsDisallowed, or return a response explaining why robots.txt is unreadable."""
        if not self.settings.obey_robots:
            return None
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one fetch per origin even when many requests start together
            rules = self._robots.get(origin)
            if rules is None:
                robots_resp = await self._get_with_retries(origin + "/robots.txt", self.settings.max_body_bytes)
                challenged = is_waf_challenge(robots_resp.status_code, robots_resp.headers, robots_resp.content)
                rules = None
                if robots_resp.status_code is not None and not robots_resp.too_large and not challenged:
                    rules = rules_from_response(robots_resp.status_code, robots_resp.content)
                if rules is None:
                    if challenged:  # the WAF answered: hand the challenge over to be classified as blocked
                        robots_resp.final_url = robots_resp.url
                        return robots_resp
                    reason = robots_resp.error or f"HTTP {robots_resp.status_code}"
                    return FetchResponse(
                        url,
                        None,
                        robots_resp.headers,
                        b"",
                        url,
                        robots_resp.attempts,
                        f"robots.txt of {origin} could not be read ({reason}); not crawling it (RFC 9309)",
                    )
                self._robots[origin] = rules
                self._obey_crawl_delay(origin, rules)
        if not rules.can_fetch(self.settings.user_agent, url):
            raise RobotsDisallowed(f"robots.txt of {origin} disallows {url}")
        return None

    def _obey_crawl_delay(self, origin: str, rules: RobotsRules) -> None:
        # One limiter covers every origin, so a delay asked by one slows them all: stricter, never looser.
        delay = rules.crawl_delay(self.settings.user_agent)
        if delay is None or delay <= 0:
            return
        before = self._limiter.rate_per_second
        if self._limiter.slow_to(1.0 / delay) and self._log is not None:
            configured = f"{before:g}/s" if before > 0 else "unlimited"
            self._log(
                f"robots.txt of {origin} asks Crawl-delay {delay:g}s: rate lowered from {configured} "
                f"to {self._limiter.rate_per_second:g}/s"
            )

    # --- one URL, with retries ------------------------------------------------------
    async def _get_with_retries(self, url: str, max_bytes: int) -> FetchResponse:
        max_attempts = max(0, self.settings.max_retries) + 1
        attempt = _Attempt(None)
        for number in range(1, max_attempts + 1):
            attempt = await self._send(url, max_bytes)
            if attempt.too_large:  # the same body would come again: not retried
                return FetchResponse(
                    url, attempt.status_code, attempt.headers, b"", url, number, attempt.error, too_large=True
                )
            retryable = attempt.error is not None or attempt.status_code in RETRY_STATUSES
            if not retryable:
                return FetchResponse(url, attempt.status_code, attempt.headers, attempt.content, url, number)
            if number == max_attempts:
                break
            await asyncio.sleep(self._retry_delay(number, attempt.headers))
        last = attempt.error or f"HTTP {attempt.status_code}"
        return FetchResponse(
            url,
            attempt.status_code,
            attempt.headers,
            attempt.content,
            url,
            max_attempts,
            f"{last} (gave up after {max_attempts} attempts)",
        )

    async def _send(self, url: str, max_bytes: int) -> _Attempt:
        async with self._slots:
            # Inside the slot, so the recorded send time is the real one.
            slot = await self._limiter.acquire()
            # Checked after the wait for the slot, with no await before the submit: a stop
            # that came while this request waited in line is never overtaken.
            if self.stopped or slot is None:
                if slot is not None:
                    slot.cancel()
                raise ClientStopped(f"not sent, the client was stopped: {url}")
            self.requests_made += 1
            sending = self._senders.submit(self._blocking_get, url, slot, max_bytes)
            try:
                return await asyncio.wrap_future(sending)
            except asyncio.CancelledError:
                if sending.cancel():  # never started: free its place in the window now
                    slot.cancel()
                raise  # else the sending thread releases the slot when its exchange ends

    def _blocking_get(self, url: str, slot: RateSlot, max_bytes: int) -> _Attempt:
        """One GET on a sender thread; releases ``slot`` as soon as the headers are back."""
        try:
            status, headers, content = self._http.get(url, on_headers=slot.release, max_bytes=max_bytes)
        except BodyTooLarge as refused:
            return _Attempt(refused.status, refused.headers, error=str(refused), too_large=True)
        except (OSError, http.client.HTTPException, zlib.error, ValueError) as exc:
            # timeouts, resets, refused connections, truncated bodies, bad encodings, bad URLs
            return _Attempt(None, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        finally:
            slot.release()
        return _Attempt(status, headers, content)

    def _retry_delay(self, attempt_number: int, headers: dict[str, str]) -> float:
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is not None:
            return min(retry_after, self.settings.backoff_max_s)
        backoff = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (attempt_number - 1))
        return backoff * random.uniform(0.5, 1.0)  # jitter: retries from many workers spread out


class _Connections:
    """Keep-alive HTTP/1.1 connections per origin, shared by the sender threads.

    Only what the crawler needs: GET, no redirects and no retries (the client does both,
    each under the rate limit), gzip/deflate bodies read within a cap, TLS verified against certifi's CAs
    (as httpx did). An idle connection the server has closed is noticed before reuse
    (its socket reads as ready), so a request is never sent twice behind the limiter.
    """

    def __init__(self, headers: dict[str, str], timeout_s: float, *, max_idle_per_origin: int):
        self._headers = headers
        self._timeout_s = timeout_s
        self._max_idle = max(1, max_idle_per_origin)
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    def get(self, url: str, on_headers, max_bytes: int) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-case headers, decoded body); ``on_headers()`` runs as the headers
        arrive. Raises BodyTooLarge for a body (wire or decoded) over ``max_bytes``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=~")
        conn = self._take(origin)
        try:
            conn.request("GET", target, headers=self._headers)
            resp = conn.getresponse()
            on_headers()
            headers: dict[str, str] = {}
            for name, value in resp.getheaders():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            body = _read_capped(resp, headers, max_bytes)
            body = _decode_body(body, headers.get("content-encoding", ""), resp.status, headers, max_bytes)
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._give_back(origin, conn)
        return resp.status, headers, body

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _take(self, origin: tuple[str, str, int]) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(origin, [])
            while idle:
                conn = idle.pop()
                if conn.sock is not None and not _readable(conn.sock):
                    return conn
                conn.close()  # closed by the server while idle (or sent junk): drop it
        scheme, host, port = origin
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context(cafile=certifi.where())
            return http.client.HTTPSConnection(host, port, timeout=self._timeout_s, context=self._tls)
        return http.client.HTTPConnection(host, port, timeout=self._timeout_s)

    def _give_back(self, origin: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if not self._closed and len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()


def _readable(sock) -> bool:
    """An idle keep-alive socket that is readable has been closed (or is broken)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _read_capped(resp: http.client.HTTPResponse, headers: dict[str, str], max_bytes: int) -> bytes:
    """The raw body, never more than ``max_bytes`` + 1 bytes of it read.

    With a Content-Length (``resp.length``, which http.client parsed) the size is known
    before reading: over the cap it is refused unread, else read whole in one call, which
    raises IncompleteRead when the body is cut short. Chunked or read-until-close bodies
    are read up to one byte past the cap, also in one call."""
    if resp.length is not None:
        if resp.length > max_bytes:
            raise BodyTooLarge(
                f"body too large: Content-Length {resp.length:,} is over the {max_bytes:,}-byte cap (not read)",
                resp.status,
                headers,
            )
        return resp.read()
    body = resp.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise BodyTooLarge(
            f"body too large: over the {max_bytes:,}-byte cap (no Content-Length; "
            f"stopped reading at {len(body):,} bytes)",
            resp.status,
            headers,
        )
    return body


def _decode_body(body: bytes, content_encoding: str, status: int, headers: dict[str, str], max_bytes: int) -> bytes:
    """Undo gzip/deflate content codings (we offer only those two), last applied first,
    each inflated to at most ``max_bytes`` (a gzip bomb stops there)."""
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, status, headers)
        elif coding == "deflate":
            try:
                body = _inflate(body, zlib.MAX_WBITS, max_bytes, status, headers)
            except zlib.error:  # some servers send raw deflate without the zlib wrapper
                body = _inflate(body, -zlib.MAX_WBITS, max_bytes, status, headers)
        elif coding != "identity":
            raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
    return body


def _inflate(data: bytes, wbits: int, max_bytes: int, status: int, headers: dict[str, str]) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, max_bytes + 1)  # one C call; output capped at the limit
    if len(out) > max_bytes:
        raise BodyTooLarge(
            f"body too large: {len(data):,} compressed bytes inflate to over the {max_bytes:,}-byte cap "
            "(stopped inflating there)",
            status,
            headers,
        )
    if not inflater.eof:
        raise zlib.error("incomplete or truncated compressed stream")
    return out


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
