"""Worker processes for work that wants more than one core (image downloads, face crops).

Workers are fresh ``python -m mpds_pipeline.base.workers`` interpreters fed over pipes,
not multiprocessing's: spawn would re-import the caller's ``__main__`` (a script without
a main guard, a notebook), and fork is unsafe in a process that runs threads (Dagster's).
A worker that loses its parent (its stdin reads end-of-file) stops, so a killed run
leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

# Seconds a worker whose parent is gone may spend finishing its task before it exits
# anyway; and that a pool being shut down early gives its workers before killing them.
ORPHAN_GRACE_S = 5.0
SHUTDOWN_GRACE_S = 2.0
# The exit status of a worker that ended itself because its parent was gone.
ORPHANED_WORKER_EXIT_CODE = 3

_HEADER = struct.Struct("!Q")
# Where ``-m mpds_pipeline.base.workers`` is importable from, whatever the caller's sys.path.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class WorkerError(RuntimeError):
    """A worker raised (the message carries its traceback) or died."""


@dataclass
class WorkerContext:
    """What a worker's handler may use: ``emit`` sends a message to the parent's
    ``on_message`` as soon as it is known; ``stop`` is set once the parent asked the
    workers to stop (``Workers.stop``) or is gone."""

    number: int
    emit: Callable[[Any], None]
    stop: threading.Event = field(default_factory=threading.Event)


def _send(stream: BinaryIO, value: Any, lock: threading.Lock | None = None) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    with lock or contextlib.nullcontext():
        stream.write(_HEADER.pack(len(data)) + data)
        stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class Workers:
    """``count`` worker processes running ``target``, fed one task at a time.

    ``target`` ("package.module:function") is called once in each worker as
    ``function(setup, context)`` and returns the handler that turns a task into its
    result (so expensive state, a model, is built once per worker). Tasks and results
    are pickled. At most ``per_worker`` tasks are in flight per worker: the task
    iterable is read only as workers free up, so memory stays flat however long it is.

    Use it as a context manager: leaving the block early (an error, a run being
    terminated) kills the workers; a worker's exception is raised here as a
    ``WorkerError`` with the worker's traceback."""

    def __init__(
        self,
        target: str,
        count: int,
        setup: Any = None,
        *,
        label: str = "worker",
        per_worker: int = 2,
        shutdown_grace_s: float = SHUTDOWN_GRACE_S,
    ):
        if count < 1 or per_worker < 1:
            raise ValueError(f"need at least one worker and one task per worker, got {count} and {per_worker}")
        self.target, self.count, self.setup, self.label = target, count, setup, label
        self.per_worker, self.shutdown_grace_s = per_worker, shutdown_grace_s
        self._procs: list[subprocess.Popen] = []
        self._errors: list[Any] = []
        self._locks: list[threading.Lock] = []
        self._events: queue.Queue = queue.Queue()
        self._stopped = False
        self._in_flight = 0

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def __enter__(self) -> Workers:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")])),
        }
        try:
            for number in range(self.count):
                errors = tempfile.TemporaryFile()  # noqa: SIM115 (read if the worker fails, closed on exit)
                self._errors.append(errors)
                proc = subprocess.Popen(
                    [sys.executable, "-m", __name__],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    env=env,
                )
                self._procs.append(proc)
                self._locks.append(threading.Lock())
                _send(proc.stdin, ("start", number, self.target, self.setup))
                threading.Thread(target=self._relay, args=(number, proc), daemon=True).start()
        except BaseException:
            self._shut_down(early=True)
            raise
        return self

    def __exit__(self, kind, error, trace) -> None:
        # Early: an error, the run being terminated, or a caller that left ``map`` unfinished.
        self._shut_down(early=kind is not None or self._in_flight > 0)

    def stop(self) -> None:
        """Ask every worker to finish the task it is on (its handler sees
        ``context.stop``) and to start no other; ``map`` then ends."""
        self._stopped = True
        for number, proc in enumerate(self._procs):
            with contextlib.suppress(OSError, ValueError):  # already gone
                _send(proc.stdin, ("stop",), self._locks[number])

    def map(
        self, tasks: Iterable, *, ordered: bool = False, on_message: Callable[[Any], None] | None = None
    ) -> Iterator:
        """Each task's result: in the order of ``tasks`` when ``ordered``, else as they
        come. ``on_message`` gets what handlers ``emit``, on this thread. After ``stop``
        the tasks not yet started are skipped: their results are missing."""
        source = iter(tasks)
        load = [0] * self.count
        sent = done = next_out = 0
        exhausted = False
        finished: dict[int, tuple[bool, Any]] = {}  # ordered: index -> (ran, result) not yet yielded
        while True:
            while not exhausted and not self._stopped:
                if ordered and sent - next_out >= self.count * self.per_worker:
                    break  # hold no more finished results than tasks in flight
                free = [n for n in range(self.count) if load[n] < self.per_worker]
                if not free:
                    break
                try:
                    task = next(source)
                except StopIteration:
                    exhausted = True
                    break
                number = min(free, key=load.__getitem__)
                self._send_task(number, sent, task)
                load[number] += 1
                sent += 1
                self._in_flight += 1
            if done == sent and (exhausted or self._stopped):
                return
            kind, number, *rest = self._events.get()
            if kind == "message":
                if on_message is not None:
                    on_message(rest[0])
                continue
            if kind == "exited":
                raise WorkerError(self._death_note(number))
            if kind == "error":
                index, text = rest
                what = "to start" if index is None else f"on task {index}"
                raise WorkerError(f"{self.label} worker {number} failed {what}:\n{text}")
            load[number] -= 1
            done += 1
            self._in_flight -= 1
            ran, index, value = kind == "result", rest[0], rest[-1]
            if not ordered:
                if ran:
                    yield value
                continue
            finished[index] = (ran, value)
            while next_out in finished:
                ran, value = finished.pop(next_out)
                next_out += 1
                if ran:
                    yield value

    def _send_task(self, number: int, index: int, task: Any) -> None:
        try:
            _send(self._procs[number].stdin, ("task", index, task), self._locks[number])
        except (OSError, ValueError):
            raise WorkerError(self._death_note(number)) from None

    def _relay(self, number: int, proc: subprocess.Popen) -> None:
        """Hands each message of worker ``number`` to the thread in ``map``; then ("exited", number)."""
        with contextlib.suppress(EOFError, OSError, ValueError, pickle.UnpicklingError):
            while True:
                kind, *rest = _receive(proc.stdout)
                self._events.put((kind, number, *rest))
        self._events.put(("exited", number))

    def _death_note(self, number: int) -> str:
        proc = self._procs[number]
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        errors = self._errors[number]
        errors.seek(0)
        tail = errors.read().decode(errors="replace")[-2000:]
        return f"{self.label} worker {number} exited with {proc.returncode} before its tasks were done:\n{tail}"

    def _shut_down(self, early: bool) -> None:
        """Close the workers' stdin (a worker stops on end-of-file); early (an error, or
        the run being terminated): give them ``shutdown_grace_s`` to end, then kill them."""
        for proc in self._procs:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        deadline = time.monotonic() + self.shutdown_grace_s if early else None
        for proc in self._procs:
            try:
                proc.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for errors in self._errors:
            errors.close()


# --- inside a worker ---------------------------------------------------------------------


def _serve(commands: BinaryIO, out: BinaryIO) -> None:
    """A worker's life: build the handler, then run tasks until end-of-file."""
    lock = threading.Lock()
    _, number, target, setup = _receive(commands)
    context = WorkerContext(number, lambda message: _send(out, ("message", message), lock))
    tasks: queue.Queue = queue.Queue()

    def read_commands() -> None:
        with contextlib.suppress(EOFError, OSError, pickle.UnpicklingError):
            while True:
                command = _receive(commands)
                if command[0] == "stop":
                    context.stop.set()
                else:
                    tasks.put(command)
        context.stop.set()  # the parent is done with us, or gone
        tasks.put(None)
        # A handler busy in one long call may not look at ``stop``: end it anyway.
        time.sleep(ORPHAN_GRACE_S)
        os._exit(ORPHANED_WORKER_EXIT_CODE)

    module_name, _, function_name = target.partition(":")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)(setup, context)
    except BaseException:  # noqa: BLE001 - handed to the parent
        _send(out, ("error", None, traceback.format_exc()), lock)
        raise
    threading.Thread(target=read_commands, daemon=True).start()
    while (command := tasks.get()) is not None:
        _, index, task = command
        if context.stop.is_set():
            _send(out, ("skipped", index), lock)
            continue
        try:
            result = handler(task)
        except Exception:  # noqa: BLE001 - handed to the parent
            _send(out, ("error", index, traceback.format_exc()), lock)
        else:
            _send(out, ("result", index, result), lock)


def main() -> None:
    # The protocol owns the real stdout; a print in a handler goes to stderr instead.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, out)
    out.flush()


if __name__ == "__main__":
    main()
