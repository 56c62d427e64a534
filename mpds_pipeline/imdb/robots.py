"""robots.txt rules, fetched once per origin and obeyed.

RFC 9309: a robots.txt that is absent (4xx) allows everything; one that cannot be
read (5xx, connection failure) means "do not crawl" until it can be read.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.robotparser import RobotFileParser


@dataclass
class RobotsRules:
    """The parsed rules of one origin; ``allow_all``/``disallow_all`` for absent/forbidden files."""

    parser: RobotFileParser | None = None
    allow_all: bool = False
    disallow_all: bool = False

    def can_fetch(self, user_agent: str, url: str) -> bool:
        if self.disallow_all:
            return False
        if self.allow_all or self.parser is None:
            return True
        return self.parser.can_fetch(user_agent, url)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


def rules_from_response(status_code: int, content: bytes) -> RobotsRules | None:
    """Rules from a robots.txt response, or None when it could not be read (do not cache)."""
    if status_code == 200:
        parser = RobotFileParser()
        parser.parse(content.decode("utf-8", errors="replace").splitlines())
        return RobotsRules(parser=parser)
    if status_code in (401, 403):
        return RobotsRules(disallow_all=True)
    if 400 <= status_code < 500 and status_code != 429:
        return RobotsRules(allow_all=True)
    return None
