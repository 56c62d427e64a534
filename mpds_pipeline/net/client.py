"""The one polite HTTP client: every request of the project, to any host, goes through it.

Politeness is per host (``HostPolicy``: rate, concurrency, robots.txt, WAF detection),
enforced here once for pages, images, archives and APIs alike: a sliding-window rate
limit per host (across all concurrent requests and retries), bounded concurrency per
host, robots.txt by RFC 9309 where the host's policy says it applies, one User-Agent
with a contact, and a host allowlist. Retries use exponential backoff with jitter on
408/429/5xx and connection errors, honouring ``Retry-After``; a 429 or 503 also halves
the host's rate for the rest of the client's life (at most once per 5 s, down to 1/8 of
its configured rate), so a server that asks us to slow down is never hammered. An AWS
WAF challenge (``waf.is_waf_challenge``) is never retried: it is returned as is so the
caller can classify it as blocked and stop.

Blocks are exact at any concurrency: a host whose policy detects the WAF starts in
probing mode (one request in flight until one answer is not a challenge), and falls
back to it on every challenge, so after a block no new request leaves until every
request in flight has answered. ``stop()`` makes sure no further request leaves, even
one already waiting for its turn (the crawl calls it on the N-th consecutive block).

Every body is read within a cap (``max_body_bytes``, or ``fetch(max_bytes=...)``): a
Content-Length over it is refused before the body is read, at most cap+1 bytes are read
otherwise, and gzip/deflate are inflated with an output limit of the cap. A body over
the cap is ``FetchResponse.too_large``, with the reason in ``error``; it is not retried.
URLs are redacted (``redact.redact_url``) in every response, error and log line, so an
API key in a query string never leaves this module.

Scheduling (limits, retries, robots, redirects) runs on the event loop, but each HTTP
exchange is a blocking ``http.client`` call on a sender thread, over keep-alive
connections (see _Connections): on loopback it costs 0.3 ms of CPU per 110 KB image
where httpx's async stack cost 3 ms. Environment proxy settings are not used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import http.client
import math
import random
import select
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit

import certifi

from .ratelimit import RateSlot, SlidingWindowLimiter
from .redact import redact_text, redact_url
from .robots import ROBOTS_MAX_BYTES, RobotsRules, rules_from_response, unreachable_rules
from .waf import is_waf_challenge

PRODUCT = "MPDS-pipeline/0.2"
DEFAULT_USER_AGENT = (
    f"{PRODUCT} (non-commercial research crawler building an open movie-poster image-text dataset; "
    "polite: 1 request/s per host by default, obeys robots.txt, stops when blocked)"
)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
SLOW_DOWN_STATUSES = frozenset({429, 503})  # the server asks for less: halve the host's rate
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECT_HOPS = 10
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five
DEFAULT_MAX_BODY_BYTES = 10_000_000  # a modern title page is 0.5-1 MB of HTML
# A 429/503 halves the host's rate, at most once per cooldown (a burst of them answers one
# overload, not several) and down to 1/8 of the configured rate (and never under one request a
# minute): slower while the host struggles, without grinding to a halt on a flaky one.
SLOW_DOWN_COOLDOWN_S = 5.0
SLOWEST_SHARE = 1 / 8
MIN_SLOWED_RATE = 1 / 60
# A new step process takes longer than this to start (interpreter, Dagster, the code location):
# a stopped client whose rate window is no longer skips the drain before it closes.
NEW_STEP_MIN_START_S = 1.5


@dataclass(frozen=True)
class HostPolicy:
    """How one host is treated. ``rate_per_second <= 0`` disables the limit (loopback
    benchmarks only); ``detect_waf`` turns on probing and the WAF gate (IMDb's hosts)."""

    rate_per_second: float = 1.0
    concurrency: int = 4
    obey_robots: bool = True
    detect_waf: bool = True


@dataclass
class ClientSettings:
    base_url: str = ""  # the main host a crawl asks (IMDb's, or a stand-in); others are allowed by name
    rate_per_second: float = 1.0  # per host, across all its concurrent requests; <= 0 disables (benchmarks)
    concurrency: int = 4  # per host
    timeout_s: float = 30.0
    max_retries: int = 4  # retries after the first attempt
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    user_agent: str = DEFAULT_USER_AGENT
    contact: str = ""  # an e-mail or URL where a host's operator can reach whoever runs the crawl
    extra_allowed_hosts: tuple[str, ...] = (
        "m.media-amazon.com",
        "ia.media-imdb.com",
        "images-na.ssl-images-amazon.com",
    )
    obey_robots: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # per response, after decoding; fetch(max_bytes=) overrides
    # hostname (or host:port) -> its own policy; any other host gets the defaults above
    host_policies: dict[str, HostPolicy] = field(default_factory=dict)

    def __post_init__(self):
        # Settings cross process boundaries as plain dicts (download workers): rebuild the policies.
        self.host_policies = {
            host.lower(): policy if isinstance(policy, HostPolicy) else HostPolicy(**policy)
            for host, policy in self.host_policies.items()
        }
        self.extra_allowed_hosts = tuple(self.extra_allowed_hosts)

    def allowed_hosts(self) -> frozenset[str]:
        base_host = (urlsplit(self.base_url).hostname or "").lower() if self.base_url else ""
        hosts = {h.lower() for h in self.extra_allowed_hosts} | {h.split(":")[0] for h in self.host_policies}
        return frozenset(hosts | ({base_host} if base_host else set()))

    def policy_for(self, netloc: str) -> HostPolicy:
        netloc = netloc.lower()
        policy = self.host_policies.get(netloc) or self.host_policies.get(netloc.split(":")[0])
        if policy is not None:
            return policy
        return HostPolicy(self.rate_per_second, self.concurrency, self.obey_robots, detect_waf=True)

    def with_host(self, url: str, policy: HostPolicy | None = None) -> ClientSettings:
        """A copy that allows ``url``'s host (with ``policy`` for it, if given)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        policies = dict(self.host_policies)
        if policy is not None and host:
            policies[parts.netloc.lower()] = policy
        return replace(self, extra_allowed_hosts=(*self.extra_allowed_hosts, host), host_policies=policies)

    def header_user_agent(self) -> str:
        """The User-Agent sent: the product and purpose, and the contact when one is set."""
        if not self.contact:
            return self.user_agent
        return (
            f"{self.user_agent.rstrip(')')}; contact: {self.contact})"
            if self.user_agent.endswith(")")
            else (f"{self.user_agent} (contact: {self.contact})")
        )

    def to_plain(self) -> dict:
        """JSON-ready (for worker processes); ``ClientSettings(**plain)`` rebuilds it."""
        plain = asdict(self)
        plain["extra_allowed_hosts"] = list(self.extra_allowed_hosts)
        return plain


@dataclass
class FetchResponse:
    url: str  # redacted
    status_code: int | None
    headers: dict[str, str]  # lower-case keys
    content: bytes
    final_url: str  # redacted
    attempts: int
    error: str | None = None  # set when there was no usable response after retries
    too_large: bool = False  # the body was over the cap: refused unread or cut off, never retried


class HostNotAllowed(Exception):
    """The URL's host is not on the allowlist; nothing was sent."""


class RobotsDisallowed(Exception):
    """robots.txt disallows the URL for our user agent; nothing was sent for it."""


class RobotsUnavailable(RobotsDisallowed):
    """robots.txt answered 5xx (or 429) or not at all, twice: RFC 9309 says crawl nothing
    on that host. The message names robots.txt and what it answered; ``http_status`` is
    None when no HTTP answer came at all (the host is unreachable)."""

    def __init__(self, message: str, http_status: int | None):
        super().__init__(message)
        self.http_status = http_status


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


class _Host:
    """One host's limiter, concurrency slots, WAF gate and counters (event loop only)."""

    def __init__(self, policy: HostPolicy):
        self.policy = policy
        self.limiter = SlidingWindowLimiter(policy.rate_per_second)
        self.slots = asyncio.Semaphore(max(1, policy.concurrency))
        self.cautious = policy.detect_waf  # probe first: one request alone until an answer is no challenge
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.requests = 0
        self.challenges = 0
        self.slowed_at = -math.inf  # time.monotonic() of the last halving of the rate

    async def enter(self) -> None:
        """Wait until a send may leave: at once, or, while cautious, when nothing is in flight."""
        while self.cautious and self.in_flight > 0:
            await self.idle.wait()
        self.in_flight += 1
        self.idle.clear()

    def leave(self, challenged: bool | None, *, may_open: bool = True) -> None:
        """``challenged``: whether the answer was a WAF challenge (None: nothing came back).
        ``may_open``: False for robots.txt, which a WAF may let through while it challenges
        every page, so its answer never opens the gate (a challenge still closes it)."""
        if challenged is not None and self.policy.detect_waf:
            self.cautious = challenged or (self.cautious and not may_open)
            self.challenges += int(challenged)
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()


class PoliteClient:
    """Use as ``async with PoliteClient(settings) as client: await client.fetch(url)``."""

    def __init__(self, settings: ClientSettings, *, log: Callable[[str], None] | None = None):
        self.settings = settings
        self.requests_made = 0
        self.stopped = False
        self._log = log
        self._allowed = settings.allowed_hosts()
        self._hosts: dict[str, _Host] = {}
        self._robots: dict[str, RobotsRules] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._http: _Connections | None = None
        self._senders: concurrent.futures.ThreadPoolExecutor | None = None

    async def __aenter__(self) -> PoliteClient:
        headers = {
            "User-Agent": self.settings.header_user_agent(),
            "Accept-Language": "en-US,en;q=0.8",
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
        }
        per_host = max([self.settings.concurrency, *(p.concurrency for p in self.settings.host_policies.values())])
        self._http = _Connections(headers, self.settings.timeout_s, max_idle_per_origin=max(1, per_host))
        # Threads for every host's slots together: a send never queues behind another host's.
        workers = max(1, self.settings.concurrency) + sum(
            max(1, p.concurrency) for p in self.settings.host_policies.values()
        )
        self._senders = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="polite-http")
        return self

    async def __aexit__(self, *exc) -> None:
        for host in self._hosts.values():
            # A stopped client's process is going away (its run died, or the host blocks): it
            # ends now, unless the window is longer than any new step takes to start (a Crawl-delay).
            if not self.stopped or host.limiter.window_s > NEW_STEP_MIN_START_S:
                await host.limiter.drain()
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
                f"refusing {redact_url(url)!r}: host {host or '?'} is not in the allowlist {sorted(self._allowed)}"
            )

    def stop(self) -> None:
        """Send nothing more: a fetch waiting for its turn raises ClientStopped at once (not
        when its turn comes). Requests already on the wire finish. Event loop only."""
        self.stopped = True
        for host in self._hosts.values():
            host.limiter.stop()

    @property
    def rate_per_second(self) -> float:
        """The rate in force on the main host: the configured one, lowered by robots.txt's
        Crawl-delay or by the server asking us to slow down."""
        netloc = urlsplit(self.settings.base_url).netloc if self.settings.base_url else ""
        host = self._hosts.get(netloc.lower())
        return host.limiter.rate_per_second if host else self.settings.policy_for(netloc).rate_per_second

    def requests_by_host(self) -> dict[str, int]:
        """Requests sent per host (retries and robots.txt included), for run metadata."""
        return dict(sorted(Counter({netloc: h.requests for netloc, h in self._hosts.items()}).items()))

    async def fetch(
        self,
        url: str,
        *,
        follow_redirects: bool = False,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
        sink: BodySink | None = None,
    ) -> FetchResponse:
        """GET ``url`` politely; redirects are followed only on request, each hop re-checked.
        ``max_bytes`` caps this body (default ``settings.max_body_bytes``); ``headers`` are
        sent with this request only (e.g. ``Range``). With a ``sink`` the body is streamed
        into it (``content`` stays empty): for files too large to hold in memory."""
        if self._http is None:
            raise RuntimeError("use PoliteClient as an async context manager")
        self.check_host(url)
        cap = self.settings.max_body_bytes if max_bytes is None else max_bytes
        current, attempts = url, 0
        for _hop in range(MAX_REDIRECT_HOPS + 1):
            challenge = await self._robots_gate(current)
            if challenge is not None:
                challenge.url, challenge.attempts = redact_url(url), challenge.attempts + attempts
                return challenge
            resp = await self._get_with_retries(current, cap, headers, sink)
            attempts += resp.attempts
            location = resp.headers.get("location")
            if follow_redirects and resp.status_code in REDIRECT_STATUSES and location:
                current = urljoin(current, location)
                self.check_host(current)
                continue
            resp.url, resp.attempts = redact_url(url), attempts
            return resp
        return FetchResponse(
            redact_url(url), None, {}, b"", redact_url(current), attempts, f"more than {MAX_REDIRECT_HOPS} redirects"
        )

    # --- robots.txt ------------------------------------------------------------------
    async def _robots_gate(self, url: str) -> FetchResponse | None:
        """Raise RobotsDisallowed/RobotsUnavailable, or return a WAF challenge that robots.txt got."""
        parts = urlsplit(url)
        if not self.settings.policy_for(parts.netloc).obey_robots:
            return None
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one fetch per origin even when many requests start together
            rules = self._robots.get(origin)
            if rules is None:
                rules, challenge = await self._read_robots(origin)
                if challenge is not None:  # the WAF answered: hand the challenge over to be classified as blocked
                    return challenge
                self._robots[origin] = rules  # cached for this client's life, an unreachable verdict too
                self._obey_crawl_delay(parts.netloc, origin, rules)
        if rules.unreachable:
            raise RobotsUnavailable(
                f"{rules.reason}; not crawling {origin} (RFC 9309: an unreachable robots.txt "
                "means crawl nothing). Rerun when it answers.",
                rules.http_status,
            )
        if not rules.can_fetch(self.settings.user_agent, url):
            raise RobotsDisallowed(f"robots.txt of {origin} disallows {redact_url(url)}")
        return None

    async def _read_robots(self, origin: str) -> tuple[RobotsRules, FetchResponse | None]:
        """RFC 9309: 2xx parse (the first 500 KiB), 3xx follow (five hops), 4xx no rules,
        5xx/429/no answer: one more try after the server's Retry-After, then crawl nothing."""
        url = origin + "/robots.txt"
        last = "no answer"
        for number in (1, 2):
            current = url
            for _hop in range(ROBOTS_MAX_REDIRECTS + 1):
                attempt = await self._send(current, ROBOTS_MAX_BYTES, None, truncate=True, opens_gate=False)
                location = attempt.headers.get("location")
                if attempt.status_code in REDIRECT_STATUSES and location:
                    current = urljoin(current, location)
                    if (urlsplit(current).hostname or "").lower() not in self._allowed:
                        break  # a hop to a host we may not ask: no rules read
                    continue
                break
            if is_waf_challenge(attempt.status_code, attempt.headers, attempt.content):
                return RobotsRules(), FetchResponse(
                    url, attempt.status_code, attempt.headers, attempt.content, url, number, None
                )
            rules = rules_from_response(attempt.status_code, attempt.content) if attempt.status_code else None
            if rules is not None:
                return rules, None
            last = f"HTTP {attempt.status_code}" if attempt.status_code is not None else (attempt.error or "no answer")
            if number == 1:
                await asyncio.sleep(self._retry_delay(1, attempt.headers))
        return unreachable_rules(
            f"robots.txt of {origin} answered {redact_text(last)} twice", attempt.status_code
        ), None

    def _obey_crawl_delay(self, netloc: str, origin: str, rules: RobotsRules) -> None:
        delay = rules.crawl_delay(self.settings.user_agent)
        if delay is None or delay <= 0:
            return
        limiter = self._host(netloc).limiter
        before = limiter.rate_per_second
        if limiter.slow_to(1.0 / delay) and self._log is not None:
            configured = f"{before:g}/s" if before > 0 else "unlimited"
            self._log(
                f"robots.txt of {origin} asks Crawl-delay {delay:g}s: rate lowered from {configured} "
                f"to {limiter.rate_per_second:g}/s"
            )

    # --- one URL, with retries ------------------------------------------------------
    def _host(self, netloc: str) -> _Host:
        netloc = netloc.lower()
        host = self._hosts.get(netloc)
        if host is None:
            host = self._hosts[netloc] = _Host(self.settings.policy_for(netloc))
        return host

    async def _get_with_retries(
        self, url: str, max_bytes: int, headers: Mapping[str, str] | None, sink: BodySink | None = None
    ) -> FetchResponse:
        max_attempts = max(0, self.settings.max_retries) + 1
        attempt = _Attempt(None)
        shown = redact_url(url)
        for number in range(1, max_attempts + 1):
            attempt = await self._send(url, max_bytes, headers, sink=sink)
            if attempt.too_large:  # the same body would come again: not retried
                return FetchResponse(
                    shown, attempt.status_code, attempt.headers, b"", shown, number, attempt.error, too_large=True
                )
            retryable = attempt.error is not None or attempt.status_code in RETRY_STATUSES
            if not retryable or is_waf_challenge(attempt.status_code, attempt.headers, attempt.content):
                return FetchResponse(shown, attempt.status_code, attempt.headers, attempt.content, shown, number)
            if attempt.status_code in SLOW_DOWN_STATUSES:
                self._slow_down(urlsplit(url).netloc, attempt.status_code)
            if number == max_attempts:
                break
            await asyncio.sleep(self._retry_delay(number, attempt.headers))
        last = attempt.error or f"HTTP {attempt.status_code}"
        return FetchResponse(
            shown,
            attempt.status_code,
            attempt.headers,
            attempt.content,
            shown,
            max_attempts,
            f"{last} (gave up after {max_attempts} attempts)",
        )

    def _slow_down(self, netloc: str, status: int) -> None:
        host = self._host(netloc)
        limiter = host.limiter
        now = time.monotonic()
        if not limiter.enabled or now - host.slowed_at < SLOW_DOWN_COOLDOWN_S:
            return  # unlimited (loopback benchmarks), or just halved for this same overload
        before = limiter.rate_per_second
        floor = max(host.policy.rate_per_second * SLOWEST_SHARE, MIN_SLOWED_RATE)
        host.slowed_at = now
        if limiter.slow_to(max(before / 2, floor)) and self._log is not None:
            self._log(
                f"{netloc} answered HTTP {status}: its rate halved from {before:g}/s to "
                f"{limiter.rate_per_second:g}/s for the rest of this run"
            )

    async def _send(
        self,
        url: str,
        max_bytes: int,
        headers: Mapping[str, str] | None,
        *,
        truncate: bool = False,
        opens_gate: bool = True,
        sink: BodySink | None = None,
    ) -> _Attempt:
        host = self._host(urlsplit(url).netloc)
        async with host.slots:
            await host.enter()
            attempt: _Attempt | None = None
            try:
                # Inside the slot, so the recorded send time is the real one.
                slot = await host.limiter.acquire()
                # Checked after the waits, with no await before the submit: a stop that came
                # while this request waited in line is never overtaken.
                if self.stopped or slot is None:
                    if slot is not None:
                        slot.cancel()
                    raise ClientStopped(f"not sent, the client was stopped: {redact_url(url)}")
                self.requests_made += 1
                host.requests += 1
                sending = self._senders.submit(self._blocking_get, url, slot, max_bytes, headers, truncate, sink)
                try:
                    attempt = await asyncio.wrap_future(sending)
                except asyncio.CancelledError:
                    if sending.cancel():  # never started: free its place in the window now
                        slot.cancel()
                    raise  # else the sending thread releases the slot when its exchange ends
                return attempt
            finally:
                challenged = None
                if attempt is not None and attempt.status_code is not None:
                    challenged = is_waf_challenge(attempt.status_code, attempt.headers, attempt.content)
                host.leave(challenged, may_open=opens_gate)

    def _blocking_get(
        self,
        url: str,
        slot: RateSlot,
        max_bytes: int,
        headers: Mapping[str, str] | None,
        truncate: bool,
        sink: BodySink | None,
    ) -> _Attempt:
        """One GET on a sender thread; releases ``slot`` as soon as the headers are back."""
        try:
            status, got, content = self._http.get(
                url, on_headers=slot.release, max_bytes=max_bytes, headers=headers, truncate=truncate, sink=sink
            )
        except BodyTooLarge as refused:
            return _Attempt(refused.status, refused.headers, error=str(refused), too_large=True)
        except (OSError, http.client.HTTPException, zlib.error, ValueError) as exc:
            # timeouts, resets, refused connections, truncated bodies, bad encodings, bad URLs
            return _Attempt(None, error=redact_text(f"{type(exc).__name__}: {exc}".rstrip(": ")))
        finally:
            slot.release()
        return _Attempt(status, got, content)

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

    def get(
        self,
        url: str,
        on_headers,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
        sink: BodySink | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-case headers, decoded body); ``on_headers()`` runs as the headers
        arrive. Raises BodyTooLarge for a body (wire or decoded) over ``max_bytes``, unless
        ``truncate``: then the first ``max_bytes`` are kept (robots.txt) and the rest unread.
        With a ``sink`` the body goes to it in chunks as served (not decoded), if it accepts."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=~")
        conn = self._take(origin)
        try:
            conn.request("GET", target, headers={**self._headers, **headers} if headers else self._headers)
            resp = conn.getresponse()
            on_headers()
            got: dict[str, str] = {}
            for name, value in resp.getheaders():
                key = name.lower()
                got[key] = f"{got[key]}, {value}" if key in got else value
            if sink is not None:
                _stream_into(sink, resp, got, max_bytes)
                conn.close()  # simplest after a long or refused body: a fresh connection next time
                return resp.status, got, b""
            if truncate:
                body = resp.read(max_bytes)
                body = _decode_body(body, got.get("content-encoding", ""), resp.status, got, max_bytes, truncate=True)
                conn.close()  # the rest of the body is unread: the connection cannot be reused
                return resp.status, got, body
            body = _read_capped(resp, got, max_bytes)
            body = _decode_body(body, got.get("content-encoding", ""), resp.status, got, max_bytes)
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._give_back(origin, conn)
        return resp.status, got, body

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


class BodySink(Protocol):
    """Where a streamed body goes (files of hundreds of MB: never held in memory).

    ``accept`` runs on a sender thread when the headers arrive, once per attempt: True
    to read the body (starting it afresh, as a retry may come), False to leave it unread.
    ``write`` gets each chunk as served."""

    def accept(self, status: int, headers: dict[str, str]) -> bool: ...

    def write(self, chunk: bytes) -> None: ...


STREAM_CHUNK_BYTES = 1 << 20


def _stream_into(sink: BodySink, resp: http.client.HTTPResponse, headers: dict[str, str], max_bytes: int) -> None:
    if not sink.accept(resp.status, headers):
        return
    if resp.length is not None and resp.length > max_bytes:
        raise BodyTooLarge(
            f"body too large: Content-Length {resp.length:,} is over the {max_bytes:,}-byte cap (not read)",
            resp.status,
            headers,
        )
    written = 0
    while chunk := resp.read(STREAM_CHUNK_BYTES):  # raises IncompleteRead when the body is cut short
        written += len(chunk)
        if written > max_bytes:
            raise BodyTooLarge(
                f"body too large: over the {max_bytes:,}-byte cap; stopped at {written:,} bytes",
                resp.status,
                headers,
            )
        sink.write(chunk)


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


def _decode_body(
    body: bytes, content_encoding: str, status: int, headers: dict[str, str], max_bytes: int, truncate: bool = False
) -> bytes:
    """Undo gzip/deflate content codings (we offer only those two), last applied first,
    each inflated to at most ``max_bytes`` (a gzip bomb stops there; with ``truncate`` the
    first ``max_bytes`` are kept instead)."""
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, status, headers, truncate)
        elif coding == "deflate":
            try:
                body = _inflate(body, zlib.MAX_WBITS, max_bytes, status, headers, truncate)
            except zlib.error:  # some servers send raw deflate without the zlib wrapper
                body = _inflate(body, -zlib.MAX_WBITS, max_bytes, status, headers, truncate)
        elif coding != "identity":
            raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
    return body


def _inflate(
    data: bytes, wbits: int, max_bytes: int, status: int, headers: dict[str, str], truncate: bool = False
) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, max_bytes + 1)  # one C call; output capped at the limit
    if truncate:
        return out[:max_bytes]
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
