"""Writing a file so that a reader sees the old one or the new one, never half of either.

Every writer of the project goes through here: a hidden temp file beside the target,
flushed, then renamed over it, and removed on failure. A write that fails for lack of
space raises DiskFull, which names the file and the space left. Temp names and the
disk-full message: docs/scale-and-failures.md and docs/architecture.md.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write refused for lack of space (pyarrow's too: an OSError with errno 28)."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def free_bytes(path: str | Path) -> int | None:
    """Bytes free to this user on the filesystem holding ``path`` (or its nearest existing
    folder); None when that cannot be read."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


class DiskFull(OSError):
    """A write failed for lack of space. The message names the file, the bytes free on its
    filesystem, what state the file was left in (``kept``) and what to do.

    An OSError with errno ENOSPC, so handlers of OSError still see it."""

    def __init__(self, path: str | Path, kept: str, needed_bytes: int | None = None, free: int | None | str = "ask"):
        """``free``: the bytes free as seen when the write failed (default: look now)."""
        self.path, self.kept, self.needed_bytes = Path(path), kept, needed_bytes
        self.free_bytes = free_bytes(path) if free == "ask" else free
        free = "unknown" if self.free_bytes is None else f"{self.free_bytes:,} bytes ({_human(self.free_bytes)})"
        needed = f"; the write needed {needed_bytes:,} bytes" if needed_bytes is not None else ""
        self.message = (
            f"no space left on the filesystem holding {self.path}: {free} free{needed}. "
            + (f"{kept} " if kept else "")
            + "What to do: free space on that filesystem (or move MPDS_DATA_DIR to a larger one), then rerun "
            "the step: it continues from what is complete."
        )
        super().__init__(errno.ENOSPC, self.message, str(self.path))

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # from a worker process, with the same figures
        return (type(self), (self.path, self.kept, self.needed_bytes, self.free_bytes))


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


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
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if is_disk_full(error) and not isinstance(error, DiskFull):
            raise DiskFull(path, f"The partial file was removed: {path.name} is as it was before.") from error
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
