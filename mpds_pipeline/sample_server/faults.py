"""Fault injection for the sample server: which request gets which failure.

A rule matches requests by path and/or id and fires a failure (429, server errors, slow
answers, resets, truncated or oversized bodies, WAF pages) reproducibly. The kinds and
the CLI's text form: docs/development.md.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

FAULT_KINDS = (
    "429",
    "500",
    "503",
    "slow",
    "reset",
    "truncate",
    "waf",
    "waf403",
    "waf200",
    "gzip_bomb",
    "huge",
    "huge_chunked",
)
_ID_RE = re.compile(r"/(?:title/tt|name/nm)(\d+)")


@dataclass(frozen=True)
class FaultRule:
    kind: str
    path: str | None = None  # regex searched in the request path
    ids: frozenset[int] | None = None  # page ids (tt or nm) the rule applies to
    times: int | None = None  # fire on the first N matching requests of each path
    rate: float = 1.0
    retry_after: str = "1"
    delay_s: float = 2.0
    size_mb: float = 200.0  # MiB of body for the hostile kinds (the gzip bomb's inflated size)

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")

    def matches(self, path: str) -> bool:
        if self.path is not None and not re.search(self.path, path):
            return False
        if self.ids is not None:
            match = _ID_RE.search(path)
            if not match or int(match.group(1)) not in self.ids:
                return False
        return True


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """Build a plan from the text form described in the module docstring."""
        rules = []
        for chunk in (spec or "").split(";"):
            parts = [p.strip() for p in chunk.split(",") if p.strip()]
            if not parts:
                continue
            options: dict = {}
            for part in parts[1:]:
                key, _, value = part.partition("=")
                key = key.strip()
                if key == "ids":
                    options["ids"] = frozenset(_parse_ids(value))
                elif key in ("times",):
                    options[key] = int(value)
                elif key in ("rate", "delay_s", "size_mb"):
                    options[key] = float(value)
                elif key in ("path", "retry_after"):
                    options[key] = value
                else:
                    raise ValueError(f"unknown fault option {key!r} in {chunk!r}")
            rules.append(FaultRule(parts[0], **options))
        return cls(rules)


def _parse_ids(text: str) -> list[int]:
    ids: list[int] = []
    for piece in text.split("+"):
        lo, _, hi = piece.partition("-")
        ids.extend(range(int(lo), int(hi or lo) + 1))
    return ids


class FaultInjector:
    """Thread-safe: decides, per request, which fault (if any) to inject."""

    def __init__(self, plan: FaultPlan | None = None, seed: int = 0):
        self.seed = seed
        self._lock = threading.Lock()
        self.set_plan(plan or FaultPlan())

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._fired: Counter = Counter()  # (rule index, path) -> times fired
            self._seen: Counter = Counter()  # (rule index, path) -> matching requests

    def choose(self, path: str) -> FaultRule | None:
        with self._lock:
            for index, rule in enumerate(self.plan.rules):
                if not rule.matches(path):
                    continue
                key = (index, path)
                self._seen[key] += 1
                if rule.times is not None and self._fired[key] >= rule.times:
                    continue
                if rule.rate < 1.0 and _unit_hash(f"{self.seed}:{index}:{path}:{self._seen[key]}") >= rule.rate:
                    continue
                self._fired[key] += 1
                return rule
        return None


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64
