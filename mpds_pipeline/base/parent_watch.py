"""Noticing that the run which started this step is gone, so a long step can stop.

Dagster's multiprocess executor runs each step in a child of the run process, and
nothing kills that child when the run process dies: a crawl would go on for hours.
This module gives such a step a cheap check to poll, and a quick exit once its data is
safe. Why and how: docs/scale-and-failures.md.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable

# The exit status of a step that ended itself because its run process died.
ORPHANED_STEP_EXIT_CODE = 3


class ParentWatch:
    """A ``should_stop`` check: why to stop once the parent process has died, else None.

    Two signals, either suffices: multiprocessing's parent sentinel (a pipe the parent
    holds open) reads end-of-file, or this process was re-parented (its ppid changed).
    ``gone`` keeps the reason once seen."""

    def __init__(self, parent: multiprocessing.process.BaseProcess):
        self.parent_pid, self._parent, self._original_ppid = parent.pid, parent, os.getppid()
        self.gone: str | None = None

    def __call__(self) -> str | None:
        if self.gone is None and (os.getppid() != self._original_ppid or not self._parent.is_alive()):
            self.gone = f"the run process (pid {self.parent_pid}) that started this step has died"
        return self.gone


def parent_gone_check() -> ParentWatch | None:
    """A ParentWatch of this process's parent; None when this process is not a
    multiprocessing child (nothing to watch)."""
    parent = multiprocessing.parent_process()
    return ParentWatch(parent) if parent is not None else None


def exit_orphaned_step(watch: ParentWatch | None, message: str, log: Callable[[str], object] | None = None) -> None:
    """End this process now if ``watch`` saw its parent die (else return): ``message``
    goes to ``log`` first (the run's event log, which outlives the run process).

    Call it only once everything the step wrote is complete (archive flushed, tables
    renamed into place, locks released): nothing after this line runs."""
    if watch is None or watch.gone is None:
        return
    try:
        if log is not None:
            log(f"{message}; this step process exits now (status {ORPHANED_STEP_EXIT_CODE})")
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(ORPHANED_STEP_EXIT_CODE)
