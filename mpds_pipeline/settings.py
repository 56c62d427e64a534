"""Environment overrides, read once where the code location loads.

Every setting also has a Dagster-side home (resource config or asset config); the
environment only changes the defaults, so a deployment can be tuned without code.

| variable | default | meaning |
|---|---|---|
| MPDS_DATA_DIR | ./data | where every stage writes |
| MPDS_IMDB_BASE_URL | https://www.imdb.com | the IMDb host (the sample server in tests/demo) |
| MPDS_RATE | 1.0 | requests per second, global to one run |
| MPDS_CONCURRENCY | 4 | requests in flight |
| MPDS_TITLE_IDS | 1-1250000 | title id range crawled (the paper's) |
| MPDS_PERSON_IDS | 1-60000 | person id range crawled (the paper's) |
| MPDS_PARTITION_SIZE | 10000 | ids per partition |
"""
from __future__ import annotations

import os

from .imdb.ids import DEFAULT_BASE_URL
from .imdb.partitions import DEFAULT_PARTITION_SIZE, DEFAULT_PERSON_RANGE, DEFAULT_TITLE_RANGE


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def env_id_range(name: str, default: tuple[int, int]) -> tuple[int, int]:
    """'1-1250000' -> (1, 1250000)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        first, last = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an id range like 1-1250000") from None
    if first < 1 or last < first:
        raise ValueError(f"{name}={raw!r}: the range must be positive and ascending")
    return first, last


def base_url() -> str:
    return env_str("MPDS_IMDB_BASE_URL", DEFAULT_BASE_URL)


def title_id_range() -> tuple[int, int]:
    return env_id_range("MPDS_TITLE_IDS", DEFAULT_TITLE_RANGE)


def person_id_range() -> tuple[int, int]:
    return env_id_range("MPDS_PERSON_IDS", DEFAULT_PERSON_RANGE)


def partition_size() -> int:
    size = env_int("MPDS_PARTITION_SIZE", DEFAULT_PARTITION_SIZE)
    if size < 1:
        raise ValueError(f"MPDS_PARTITION_SIZE must be positive, got {size}")
    return size
