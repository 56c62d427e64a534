"""Face work on several cores: worker processes that each crop a share of the actors.

The workers are plain ``python -m mpds_pipeline.curate.face_workers`` processes fed
over pipes, not multiprocessing's: spawn would re-import the caller's ``__main__`` (a
script without a main guard, a notebook), and fork is unsafe in a process that runs
threads (Dagster's). Each message is a length-prefixed pickle: the parent sends
(settings, face settings, crops folder) and then the tasks; a worker answers one result
per actor as soon as it is done, so the parent can report progress.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import BinaryIO

_HEADER = struct.Struct("!Q")


def _send(stream: BinaryIO, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


def run_in_workers(tasks: list[tuple], setup: tuple, workers: int, on_result: Callable[[tuple], None]) -> None:
    """Split ``tasks`` over ``workers`` processes; ``on_result`` gets each (kept, rows,
    decodes) on the calling thread, in completion order. A worker that dies raises."""
    import queue

    shares = [tasks[i::workers] for i in range(workers)]
    results: queue.Queue = queue.Queue()
    procs = []
    for share in shares:
        if not share:
            continue
        proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        _send(proc.stdin, (setup, share))
        proc.stdin.close()
        procs.append((proc, len(share)))
        threading.Thread(target=_relay, args=(proc, len(share), results), daemon=True).start()
    expected = sum(n for _, n in procs)
    try:
        for _ in range(expected):
            item = results.get()
            if isinstance(item, BaseException):
                raise RuntimeError(f"a face worker failed: {item}") from item
            on_result(item)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _relay(proc: subprocess.Popen, count: int, results) -> None:
    try:
        for _ in range(count):
            results.put(_receive(proc.stdout))
    except BaseException as error:  # noqa: BLE001 - handed to the parent thread
        code = proc.wait()
        results.put(RuntimeError(f"exit code {code} ({type(error).__name__})"))


def _serve(tasks: Iterable[tuple], setup: tuple, out: BinaryIO) -> None:
    from .actor_photos import _crop_actor
    from .faces import FaceAnalyzer

    settings, face_settings, crops_dir = setup
    analyzer = FaceAnalyzer(face_settings)
    for actor_id, cands, fingerprint in tasks:
        decodes: dict[str, str | None] = {}
        kept, rows = _crop_actor(analyzer, face_settings, settings, actor_id, cands, crops_dir, decodes, fingerprint)
        _send(out, (kept, rows, decodes))


if __name__ == "__main__":
    setup, tasks = _receive(sys.stdin.buffer)
    _serve(tasks, setup, sys.stdout.buffer)
