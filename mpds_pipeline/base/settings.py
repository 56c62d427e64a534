"""Environment overrides, read once where the code location loads.

Every setting has a Dagster-side home (resource or asset config); the environment and a
data directory's ``settings.env`` only change its defaults, so a deployment can be tuned
without code. This module is the one reader of both. Every variable, its default and
meaning: docs/configuration.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import MISSING, field
from pathlib import Path
from typing import TypeVar

from .layout import DataLayout, default_data_dir

_Number = TypeVar("_Number", int, float)


def read_settings_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped; an absent file is empty."""
    return dict(_read_settings_file(str(path), *_stamp(Path(path))))


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_settings_file(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    if size < 0:
        return ()
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"{path}, line {number}: expected KEY=VALUE, got {line!r}")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def write_settings_file(path: Path, values: dict[str, str], comment: str) -> None:
    """Write ``values`` as a settings file (replacing it), with ``comment`` on top."""
    lines = [f"# {text}" for text in comment.splitlines()]
    lines += [f"{name}={value}" for name, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def lookup(name: str) -> str:
    """The environment's value, else the data directory's settings file's, else ''."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    return read_settings_file(DataLayout(default_data_dir()).settings_file).get(name, "")


def env_str(name: str, default: str) -> str:
    return lookup(name) or default


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def _env_number(name: str, default: _Number, convert: Callable[[str], _Number], what: str) -> _Number:
    raw = lookup(name)
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not {what}") from None


def env_bool(name: str, default: bool) -> bool:
    """1/true/yes/on or 0/false/no/off; unset -> ``default``."""
    raw = lookup(name).strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a yes/no value (1/0, true/false)")


def env_list(name: str, default: list[str]) -> list[str]:
    """'a,b , c' -> ['a', 'b', 'c']; unset -> ``default``."""
    raw = lookup(name)
    if not raw:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_id_range(name: str, default: tuple[int, int]) -> tuple[int, int]:
    """'1-1250000' -> (1, 1250000)."""
    raw = lookup(name)
    if not raw:
        return default
    try:
        first, last = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an id range like 1-1250000") from None
    if first < 1 or last < first:
        raise ValueError(f"{name}={raw!r}: the range must be positive and ascending")
    return first, last


def setting(default=MISSING, doc: str = "", *, factory=MISSING, env: str | None = None, config_name: str | None = None):
    """One setting of a core settings dataclass, declared once: its default and ``doc``.

    The Dagster config or resource that exposes the setting derives its field from this
    (defs/settings_models.py), so the default and the description cannot drift apart.
    ``env`` names the variable that overrides the Dagster-side default when the code
    location loads (the core's default stays as written); ``config_name`` is the field's
    name in Dagster config where it differs from the core's.
    """
    metadata = {"doc": doc}
    if env:
        metadata["env"] = env
    if config_name:
        metadata["config_name"] = config_name
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)
