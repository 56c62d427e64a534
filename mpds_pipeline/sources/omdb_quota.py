"""OMDb's daily quota: requests per UTC day across every partition and process.

A free key allows 1,000 requests a day; the count lives in one small JSON file under an
exclusive lock, so parallel partitions and the daily schedule share it. OMDb's own
"Request limit reached!" pauses the host instead (sources/pauses.py).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..base.files import write_atomic

DEFAULT_DAILY_QUOTA = 1000  # OMDb's free key


class DailyQuota:
    """Requests to OMDb per UTC day across every partition and process, in one small
    JSON file under an exclusive lock. (OMDb's own "Request limit reached!" pauses the
    host instead: sources/pauses.py.)"""

    def __init__(self, path: Path, limit: int, today: Callable[[], str] | None = None):
        self.path = Path(path)
        self.limit = limit
        self._today = today or (lambda: datetime.now(UTC).date().isoformat())

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                write_atomic(self.path, json.dumps(state).encode())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict:
        today = self._today()
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("day") != today:
            state = {"day": today, "requests": 0}
        return state

    def take(self) -> bool:
        """Count one request if today's quota allows it."""
        with self._locked() as state:
            if state["requests"] >= self.limit:
                return False
            state["requests"] += 1
            return True

    def status(self) -> dict:
        state = self._read()
        return {"day": state["day"], "requests": state["requests"]}
