"""A sliding-window rate limiter shared by every request a client sends.

Token spacing alone lets a burst slip through when requests queue up behind a slow
one; a sliding window guarantees that no window of ``window_s`` seconds, wherever it
starts, ever holds more than ``max_in_window`` sends. The window is widened by a small
margin because the server stamps a request a little after the client sends it, and
network jitter must not push two sends into the same server-side second.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque


class SlidingWindowLimiter:
    """At most ``rate_per_second`` sends in any window of one second (plus ``margin_s``).

    ``rate_per_second <= 0`` disables the limit (benchmarks on loopback only).
    """

    def __init__(self, rate_per_second: float, *, window_s: float = 1.0, margin_s: float = 0.1):
        self.enabled = rate_per_second > 0
        # A fractional rate (0.5/s) becomes one send per 2 s: widen the window instead of
        # rounding the count down to zero.
        if self.enabled and rate_per_second < 1:
            self.max_in_window = 1
            self.window_s = window_s / rate_per_second + margin_s
        else:
            self.max_in_window = max(1, math.floor(rate_per_second * window_s)) if self.enabled else 0
            self.window_s = window_s + margin_s
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more send fits in the window, then record it as sent now."""
        if not self.enabled:
            return
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window_s:
                    self._sent.popleft()
                if len(self._sent) < self.max_in_window:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.window_s - now)
