"""A sliding-window rate limiter shared by every request a client sends.

The limit must hold as the server counts it (at most N arrivals in any one-second
window), which spacing send times alone does not guarantee. Why each request holds its
slot until a window after its response: docs/crawl.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

_IN_FLIGHT = math.inf
_POLL_S = 0.01


class RateSlot:
    """One send's place in the window; ``release()`` when its response headers arrive."""

    __slots__ = ("limiter", "ended")

    def __init__(self, limiter: SlidingWindowLimiter | None):
        self.limiter = limiter
        self.ended = _IN_FLIGHT

    def release(self) -> None:
        if self.limiter is not None and self.ended == _IN_FLIGHT:
            self.ended = time.monotonic()

    def cancel(self) -> None:
        """Give the place back unused: nothing was sent with it (event loop only)."""
        if self.limiter is not None and self in self.limiter._slots:
            self.limiter._slots.remove(self)


class SlidingWindowLimiter:
    """At most ``rate_per_second`` requests in any one-second window at the server.

    ``rate_per_second <= 0`` disables the limit (benchmarks on loopback only). A rate
    below 1 (0.5/s) becomes one request per 1/rate seconds.
    """

    def __init__(self, rate_per_second: float, *, window_s: float = 1.0, margin_s: float = 0.01):
        self._base_window_s, self._margin_s = window_s, margin_s
        self._configure(rate_per_second)
        self._slots: list[RateSlot] = []
        self._lock = asyncio.Lock()
        self._stopped = asyncio.Event()

    def _configure(self, rate_per_second: float) -> None:
        self.rate_per_second = rate_per_second
        self.enabled = rate_per_second > 0
        if self.enabled and rate_per_second < 1:
            self.max_in_window, self.window_s = 1, self._base_window_s / rate_per_second + self._margin_s
        else:
            self.max_in_window = max(1, math.floor(rate_per_second * self._base_window_s)) if self.enabled else 0
            self.window_s = self._base_window_s + self._margin_s

    def slow_to(self, rate_per_second: float) -> bool:
        """Lower the limit to one request per 1/``rate_per_second`` seconds (robots.txt's
        Crawl-delay: a gap, not a budget per second); never raises it. Slots already taken
        keep counting. Returns True when the limit changed."""
        if rate_per_second <= 0 or (self.enabled and rate_per_second >= self.rate_per_second):
            return False
        self.rate_per_second, self.enabled = rate_per_second, True
        self.max_in_window, self.window_s = 1, self._base_window_s / rate_per_second + self._margin_s
        return True

    def stop(self) -> None:
        """Give no more slots: every waiter (and later caller) of ``acquire`` gets None now,
        not after its turn in the window (event loop only)."""
        self._stopped.set()

    async def acquire(self) -> RateSlot | None:
        """Wait for a free slot and take it; the caller sends right away, then releases.
        None once ``stop`` was called: nothing may be sent."""
        if self._stopped.is_set():
            return None
        if not self.enabled:
            return RateSlot(None)
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                if self._stopped.is_set():
                    return None
                now = time.monotonic()
                self._slots = [s for s in self._slots if now - s.ended < self.window_s]
                if len(self._slots) < self.max_in_window:
                    slot = RateSlot(self)
                    self._slots.append(slot)
                    return slot
                next_expiry = min(s.ended for s in self._slots) + self.window_s
                # All slots in flight: their expiry is unknown until an answer comes, so poll.
                await self._sleep_unless_stopped(_POLL_S if next_expiry == _IN_FLIGHT else next_expiry - now)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        if seconds <= _POLL_S:
            await asyncio.sleep(max(0.0, seconds))
            return
        # A long wait (a slow rate, a Crawl-delay) must not delay a stop by up to a window.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def drain(self) -> None:
        """Wait until every finished request's window has passed.

        A client calls this before it closes, so that whatever runs next (the next
        partition's step, possibly in another process) starts with a clean window and
        the rate holds across steps, not only within one."""
        if not self.enabled:
            return
        ended = [s.ended for s in self._slots if s.ended != _IN_FLIGHT]
        if ended:
            await asyncio.sleep(max(0.0, max(ended) + self.window_s - time.monotonic()))
