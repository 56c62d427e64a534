"""Hosts whose automation is paused: blocked by a WAF, or out of their daily quota.

A scheduled crawl that keeps asking a host that blocks it grows nothing and hammers it
every day. So when a source is blocked (IMDb's WAF) or answers with its quota error
(OMDb's "Request limit reached!"), the run records a pause for that host, and the
sensors and schedules that would ask it skip with a reason naming the host and the date
they try again (a back-off of ``MPDS_PAUSE_DAYS``, default 7 days, or the next UTC day
for a daily quota). One small JSON file per data directory, written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..base.files import write_atomic

DEFAULT_PAUSE_DAYS = 7.0


@dataclass(frozen=True)
class HostPause:
    host: str
    reason: str
    since: str  # ISO 8601, UTC
    until: str  # ISO 8601, UTC: automation asks the host again from then on

    @property
    def until_time(self) -> datetime:
        return datetime.fromisoformat(self.until)

    def describe(self) -> str:
        return f"{self.host} is paused until {self.until_time:%Y-%m-%d %H:%M} UTC: {self.reason}"


def next_utc_day(now: datetime | None = None) -> datetime:
    """When a daily quota starts again (OMDb's resets daily; midnight UTC is the safe guess)."""
    now = now or datetime.now(timezone.utc)
    return datetime(now.year, now.month, now.day, tzinfo=timezone.utc) + timedelta(days=1)


def pause_host(
    path: Path,
    host: str,
    reason: str,
    *,
    days: float = DEFAULT_PAUSE_DAYS,
    until: datetime | None = None,
    now: datetime | None = None,
) -> HostPause:
    """Record that automation must leave ``host`` alone until ``until`` (default now + ``days``)."""
    now = now or datetime.now(timezone.utc)
    until = until or now + timedelta(days=days)
    pause = HostPause(host.lower(), reason, now.isoformat(timespec="seconds"), until.isoformat(timespec="seconds"))
    pauses = _read(path)
    pauses[pause.host] = asdict(pause)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(pauses, indent=1, sort_keys=True))
    return pause


def active_pause(path: Path, host: str, now: datetime | None = None) -> HostPause | None:
    """The pause in force for ``host``, or None (none recorded, or it has ended)."""
    entry = _read(path).get(host.lower())
    if entry is None:
        return None
    pause = HostPause(**entry)
    return pause if pause.until_time > (now or datetime.now(timezone.utc)) else None


def active_pauses(path: Path, now: datetime | None = None) -> list[HostPause]:
    now = now or datetime.now(timezone.utc)
    return [p for p in (HostPause(**e) for e in _read(path).values()) if p.until_time > now]


def clear_pause(path: Path, host: str) -> None:
    pauses = _read(path)
    if pauses.pop(host.lower(), None) is not None:
        write_atomic(path, json.dumps(pauses, indent=1, sort_keys=True))


def _read(path: Path) -> dict[str, dict]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ValueError(f"{path} is not a pause file ({error}); remove it to clear every pause") from None
