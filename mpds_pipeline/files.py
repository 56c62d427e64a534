"""Writing a file so that a reader sees the old one or the new one, never half of either.

Every writer of the project goes through here: the data goes to a temp file in the
target's folder (same filesystem, so the rename is atomic), is flushed to disk, then
renamed over the target; on any failure the temp file is removed and the target is left
as it was. The temp name is hidden and unique per process and thread
(``.<name>.<pid>.<thread>.part``): no two running writers share one, a file left by a
killed run is overwritten by the next writer of the same name, and no random name is
drawn (``mkstemp``'s cost more than a small image's whole write). Folder scans of the
project skip it: it starts with a dot and does not end in the target's suffix.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def temp_path_for(path: str | Path) -> Path:
    """The temp file a writer of ``path`` uses in this process and thread."""
    path = Path(path)
    return path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.part"


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path for writers that want a path (pyarrow, PIL, torch, safetensors);
    when the block ends without an error it becomes ``path``.

    ``fsync``: flush the file to disk before the rename, so that after a power cut
    ``path`` holds the old or the new content, never an empty file.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, fsync: bool = True, **open_args) -> Iterator[IO]:
    """``open(path, mode)`` for writing, atomically: the file appears when the block ends
    without an error (``mode`` "w" or "wb"; ``open_args`` as for ``open``)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path, fsync=False) as tmp, open(tmp, mode, **open_args) as handle:
        yield handle
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def write_atomic(path: str | Path, data: bytes | str, *, fsync: bool = True, encoding: str = "utf-8") -> Path:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    with atomic_open(path, "wb", fsync=fsync) as out:
        out.write(raw)
    return Path(path)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
