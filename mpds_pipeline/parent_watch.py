"""Noticing that the run which started this step is gone, so a long step can stop.

Dagster's multiprocess executor (the default) runs each step in a child process of the
run process. When the run process dies (SIGKILL, OOM, a closed terminal), nothing kills
the child: a crawl step would go on sending requests for hours. ``parent_gone_check``
gives such a step a cheap check to poll. In-process execution needs none: there the
step is the run process and dies with it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable


def parent_gone_check() -> Callable[[], str | None] | None:
    """A check returning why to stop once the parent process has died, else None; None
    itself when this process is not a multiprocessing child (nothing to watch).

    Two signals, either suffices: multiprocessing's parent sentinel (a pipe the parent
    holds open) reads end-of-file, or this process was re-parented (its ppid changed)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return None
    parent_pid, original_ppid = parent.pid, os.getppid()

    def parent_gone() -> str | None:
        if os.getppid() != original_ppid or not parent.is_alive():
            return f"the run process (pid {parent_pid}) that started this step has died"
        return None

    return parent_gone
