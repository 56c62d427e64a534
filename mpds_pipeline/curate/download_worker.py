"""A download worker process: ``python -m mpds_pipeline.curate.download_worker``.

images.py starts these with ``subprocess`` (not ``multiprocessing``) when a download
is fast enough to use more than one core. A fresh interpreter runs only this module,
so a library caller's ``__main__`` is never re-imported and needs no
``if __name__ == "__main__"`` guard, and no thread of the caller is forked.

Protocol (JSON lines): the first line on stdin is the job; then ``stop`` on stdin, or
stdin closing (the parent is gone), stops the worker after its requests in flight.
Each manifest row goes to stdout as ``{"row": {...}}`` as soon as it is known, and the
last line is ``{"done": {"blocked": bool, "fetched": int}}``.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from ..net.client import ClientSettings
from .image_checks import ImageLimits
from .image_fetch import fetch_and_store


def job_line(todo, dest_dir: Path, settings: ClientSettings, limits: ImageLimits, verify: str, known_bad) -> bytes:
    """The first stdin line of a worker (the inverse of ``_read_job``)."""
    return (
        json.dumps(
            {
                "todo": todo,
                "dest_dir": str(dest_dir),
                "settings": settings.to_plain(),
                "limits": vars(limits),
                "verify": verify,
                "known_bad": [[i, v, *bad] for (i, v), bad in known_bad.items()],
            }
        )
        + "\n"
    ).encode()


def _read_job(line: str) -> dict:
    job = json.loads(line)
    settings = ClientSettings(**job["settings"])
    return {
        "todo": [tuple(item) for item in job["todo"]],
        "dest_dir": Path(job["dest_dir"]),
        "settings": settings,
        "limits": ImageLimits(**job["limits"]),
        "verify": job["verify"],
        "known_bad": {(i, v): tuple(bad) for i, v, *bad in job["known_bad"]},
    }


def main() -> None:
    job = _read_job(sys.stdin.readline())
    stop = threading.Event()
    out_lock = threading.Lock()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()  # "stop", or the parent closed our stdin

    def emit(message: dict) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    threading.Thread(target=watch_stdin, daemon=True).start()
    blocked, fetched = fetch_and_store(
        job["todo"],
        job["dest_dir"],
        job["settings"],
        job["limits"],
        job["verify"],
        lambda row: emit({"row": row}),
        known_bad=job["known_bad"],
        stop=stop,
    )
    emit({"done": {"blocked": blocked, "fetched": fetched}})


if __name__ == "__main__":
    main()
