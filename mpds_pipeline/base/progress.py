"""Progress of long steps: one line at a steady cadence, for Dagster's run log and the CLI.

The core never imports Dagster, so a long core function takes an optional ``log``
callable and reports through a ``Progress``: an asset passes ``context.log.info``, a CLI
command a printer or a progress bar. The line format and its cadence: docs/pipeline.md.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

ProgressLog = Callable[[str], None]
DEFAULT_EVERY_S = 30.0


def format_duration(seconds: float) -> str:
    """45 -> '45s', 150 -> '2m30s', 8760 -> '2h26m', 200000 -> '2d7h'."""
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_rate(per_second: float, unit: str) -> str:
    if per_second >= 10:
        return f"{per_second:,.0f} {unit}/s"
    if per_second >= 0.1:
        return f"{per_second:.2f} {unit}/s"
    return f"{per_second * 60:.2f} {unit}/min"


class Progress:
    """Counts items of a (possibly unknown) total and logs a line at a steady cadence.

    ``update(n, status=...)`` adds ``n`` done items, counted under ``status`` when given;
    other keyword values (``loss=0.12``) are shown as their latest value. Thread-safe.
    Use as a context manager, or call ``close()``, to log the final line.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        log: ProgressLog | None = None,
        *,
        unit: str = "items",
        every_s: float = DEFAULT_EVERY_S,
        every_n: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.statuses: Counter[str] = Counter()
        self.values: dict[str, object] = {}
        self._log = log
        self._every_s = every_s
        self._every_n = every_n
        self._clock = clock
        self._started = clock()
        self._last_logged_at: float | None = None
        self._last_logged_done = 0
        self._closed = False
        self._lock = threading.Lock()

    # --- counting ------------------------------------------------------------------
    def update(self, n: int = 1, *, status: str | None = None, **values: object) -> None:
        with self._lock:
            self.done += n
            if status is not None:
                self.statuses[status] += n
            self.values.update(values)
            if self._due():
                self._emit()

    def close(self, failed: bool = False) -> None:
        """Log the final line (once): "done in ..." or, when ``failed``, "stopped after ..."."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._emit(final="stopped after" if failed else "done in")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)

    # --- figures -------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._started

    @property
    def rate(self) -> float:
        elapsed = self.elapsed_s
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.total is None or self.done == 0:
            return None
        rate = self.rate
        return max(0, self.total - self.done) / rate if rate > 0 else None

    def line(self, final: bool | str = False) -> str:
        """The progress line; ``final`` (True or the words before the duration) ends it
        with the elapsed time instead of the ETA."""
        if self.total is not None:
            share = f" ({100.0 * self.done / self.total:.1f}%)" if self.total else ""
            head = f"{self.done:,}/{self.total:,} {self.unit}{share}"
        else:
            head = f"{self.done:,} {self.unit}"
        parts = [head, format_rate(self.rate, self.unit)]
        if final:
            parts.append(f"{'done in' if final is True else final} {format_duration(self.elapsed_s)}")
        elif (eta := self.eta_s) is not None:
            parts.append(f"ETA {format_duration(eta)}")
        text = f"{self.label}: " + ", ".join(parts)
        details = [f"{name} {count:,}" for name, count in self.statuses.most_common()]
        details += [f"{name} {_short(value)}" for name, value in self.values.items()]
        return text + ("; " + ", ".join(details) if details else "")

    # --- cadence -------------------------------------------------------------------
    def _due(self) -> bool:
        if self._last_logged_at is None:
            return True
        if self.total is not None and self.done >= self.total:
            return False  # the final line comes from close()
        if self._every_n and self.done - self._last_logged_done >= self._every_n:
            return True
        return self._clock() - self._last_logged_at >= self._every_s

    def _emit(self, final: bool | str = False) -> None:
        self._last_logged_at = self._clock()
        self._last_logged_done = self.done
        if self._log is not None:
            self._log(self.line(final=final))


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
