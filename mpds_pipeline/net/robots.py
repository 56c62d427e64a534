"""robots.txt rules, fetched once per origin and obeyed (RFC 9309).

It turns a robots.txt answer into rules (or "no rules", or "crawl nothing"), and reads
``Crawl-delay``, which the client honours as a lower rate. How each answer is read:
docs/crawl.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from urllib.robotparser import RobotFileParser

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 2.5: parse at least the first 500 KiB


@dataclass
class RobotsRules:
    """The parsed rules of one origin; ``allow_all``/``disallow_all`` for absent/forbidden files."""

    parser: RobotFileParser | None = None
    allow_all: bool = False
    disallow_all: bool = False
    unreachable: bool = False  # 5xx/429/no answer: crawl nothing (``reason`` says what came back)
    reason: str = ""
    http_status: int | None = None  # what an unreachable robots.txt answered (None: nothing)
    # (lower-case user agents of a group, its Crawl-delay in seconds or None), in file order
    delay_groups: list[tuple[list[str], float | None]] = field(default_factory=list)

    def can_fetch(self, user_agent: str, url: str) -> bool:
        if self.disallow_all or self.unreachable:
            return False
        if self.allow_all or self.parser is None:
            return True
        return self.parser.can_fetch(user_agent, url)

    def crawl_delay(self, user_agent: str) -> float | None:
        """Seconds between requests that the group applying to ``user_agent`` asks, or None."""
        product = user_agent.split("/")[0].lower()
        named = [delay for agents, delay in self.delay_groups if any(a != "*" and a in product for a in agents)]
        anyone = [delay for agents, delay in self.delay_groups if "*" in agents]
        matching = named or anyone  # the first applying group decides, as for Allow/Disallow
        return matching[0] if matching else None


def _delay_groups(lines: list[str]) -> list[tuple[list[str], float | None]]:
    groups: list[tuple[list[str], float | None]] = []
    agents: list[str] = []
    delay: float | None = None
    in_rules = False
    for raw in lines:
        key, sep, value = raw.split("#", 1)[0].partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if in_rules:  # a user-agent line after rules starts the next group
                groups.append((agents, delay))
                agents, delay, in_rules = [], None, False
            agents.append(value.lower())
        elif agents:
            in_rules = True
            if key == "crawl-delay":
                try:
                    seconds = float(value)
                except ValueError:
                    continue
                if math.isfinite(seconds) and seconds > 0:
                    delay = seconds
    if agents:
        groups.append((agents, delay))
    return groups


def rules_from_response(status_code: int, content: bytes) -> RobotsRules | None:
    """Rules from a robots.txt answer, or None when it says "unreachable" (5xx, 429, other)."""
    if 200 <= status_code < 300:
        lines = content[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace").splitlines()
        parser = RobotFileParser()
        parser.parse(lines)
        return RobotsRules(parser=parser, delay_groups=_delay_groups(lines))
    if 400 <= status_code < 500 and status_code != 429:
        return RobotsRules(allow_all=True)
    return None


def unreachable_rules(reason: str, http_status: int | None) -> RobotsRules:
    return RobotsRules(unreachable=True, reason=reason, http_status=http_status)
