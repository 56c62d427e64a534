"""Handlers that test_workers.py runs in real worker processes (importable by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square(setup, context):
    offset = setup or 0

    def handle(n: int):
        if n < 0:
            raise ValueError(f"bad task {n}")
        time.sleep(0.002 * (n % 3))  # finish out of order
        return n * n + offset, os.getpid()

    return handle


def wait_for_gate(gate: str, context):
    """Says "started" (with the task) and waits until the file ``gate`` exists."""

    def handle(n: int):
        context.emit(("started", n))
        while not Path(gate).exists():
            time.sleep(0.01)
        return n

    return handle


def exit_on(code: int, context):
    def handle(n: int):
        if n == 2:
            os._exit(code)
        return n

    return handle


def broken_start(setup, context):
    raise RuntimeError("no model here")


def until_stopped(setup, context):
    """Emits its pid, then runs until told to stop (or forever, ``setup`` "ignore")."""

    def handle(n: int):
        context.emit(os.getpid())
        while setup == "ignore" or not context.stop.is_set():
            time.sleep(0.01)
        return n

    return handle
