"""One host's gate inside the polite client: its rate limiter, concurrency slots, WAF
probing and request counters, and how a "slow down" answer lowers its rate."""

from __future__ import annotations

import asyncio
import math
import time

from .client_settings import HostPolicy
from .ratelimit import SlidingWindowLimiter

# A 429/503 halves the host's rate, at most once per cooldown (a burst of them answers one
# overload, not several) and down to 1/8 of the configured rate (and never under one request a
# minute): slower while the host struggles, without grinding to a halt on a flaky one.
SLOW_DOWN_COOLDOWN_S = 5.0
SLOWEST_SHARE = 1 / 8
MIN_SLOWED_RATE = 1 / 60


class HostGate:
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

    def slow_down(self) -> float | None:
        """Halve the rate after a 429/503; the rate before, or None when it was left as is
        (unlimited, just halved for the same overload, or already at its floor)."""
        limiter = self.limiter
        now = time.monotonic()
        if not limiter.enabled or now - self.slowed_at < SLOW_DOWN_COOLDOWN_S:
            return None
        before = limiter.rate_per_second
        floor = max(self.policy.rate_per_second * SLOWEST_SHARE, MIN_SLOWED_RATE)
        self.slowed_at = now
        return before if limiter.slow_to(max(before / 2, floor)) else None
