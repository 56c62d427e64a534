"""The one polite HTTP client: every request of the project, to any host, goes through it.

Per host (``HostPolicy``, host_gate.py): a sliding-window rate limit, bounded concurrency,
robots.txt (RFC 9309), one User-Agent with a contact, and an allowlist. Retries back off
with jitter and honour Retry-After; a 429/503 halves the host's rate. A WAF challenge is
returned, never retried, and holds back new requests until those in flight answer. Bodies
are read within a cap (connections.py); URLs are redacted in every response and log line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import random
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from .client_settings import ClientSettings
from .connections import BodySink, BodyTooLarge, Connections, parse_retry_after
from .host_gate import HostGate
from .ratelimit import RateSlot
from .redact import redact_text, redact_url
from .robots import ROBOTS_MAX_BYTES, RobotsRules, rules_from_response, unreachable_rules
from .waf import is_waf_challenge

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
SLOW_DOWN_STATUSES = frozenset({429, 503})  # the server asks for less: halve the host's rate
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECT_HOPS = 10
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five
# A new step process takes longer than this to start (interpreter, Dagster, the code location):
# a stopped client whose rate window is no longer skips the drain before it closes.
NEW_STEP_MIN_START_S = 1.5


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
        self._hosts: dict[str, HostGate] = {}
        self._robots: dict[str, RobotsRules] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._http: Connections | None = None
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
        self._http = Connections(headers, self.settings.timeout_s, max_idle_per_origin=max(1, per_host))
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
    def _host(self, netloc: str) -> HostGate:
        netloc = netloc.lower()
        host = self._hosts.get(netloc)
        if host is None:
            host = self._hosts[netloc] = HostGate(self.settings.policy_for(netloc))
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
        before = host.slow_down()
        if before is not None and self._log is not None:
            self._log(
                f"{netloc} answered HTTP {status}: its rate halved from {before:g}/s to "
                f"{host.limiter.rate_per_second:g}/s for the rest of this run"
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
