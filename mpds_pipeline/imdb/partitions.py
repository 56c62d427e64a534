"""Id-range partitions: the crawl, downloads and captions are split by IMDb id range.

A partition key names its inclusive range, e.g. ``tt0000001-tt0010000`` or
``nm0000001-nm0010000``, so a key alone says what it covers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base.settings import env_id_range, env_int
from .ids import person_code, title_code

DEFAULT_TITLE_RANGE = (1, 1_250_000)  # the paper probed tt0000001..tt1250000
DEFAULT_PERSON_RANGE = (1, 60_000)  # and nm0000001..nm0060000
DEFAULT_PARTITION_SIZE = 10_000

_CODERS = {"title": title_code, "person": person_code}
_PREFIXES = {"tt": "title", "nm": "person"}


@dataclass(frozen=True)
class IdRange:
    kind: str  # "title" or "person"
    first: int
    last: int  # inclusive

    @property
    def key(self) -> str:
        code = _CODERS[self.kind]
        return f"{code(self.first)}-{code(self.last)}"

    def ids(self) -> range:
        return range(self.first, self.last + 1)

    def __len__(self) -> int:
        return self.last - self.first + 1


def id_ranges(kind: str, first: int, last: int, size: int = DEFAULT_PARTITION_SIZE) -> list[IdRange]:
    """Split ``first..last`` (inclusive) into consecutive ranges of ``size`` ids."""
    if kind not in _CODERS:
        raise ValueError(f"unknown kind {kind!r}")
    if first < 1 or last < first:
        raise ValueError(f"bad id range {first}..{last}")
    if size < 1:
        raise ValueError(f"partition size must be positive, got {size}")
    return [IdRange(kind, lo, min(lo + size - 1, last)) for lo in range(first, last + 1, size)]


def parse_partition_key(key: str) -> IdRange:
    """'tt0000001-tt0010000' -> IdRange('title', 1, 10000)."""
    try:
        left, right = key.split("-")
        kind = _PREFIXES[left[:2]]
        if right[:2] != left[:2]:
            raise ValueError
        first, last = int(left[2:]), int(right[2:])
    except (ValueError, KeyError):
        raise ValueError(f"not an id-range partition key: {key!r} (expected e.g. tt0000001-tt0010000)") from None
    if last < first:
        raise ValueError(f"partition key {key!r} ends before it starts")
    return IdRange(kind, first, last)


def title_id_range() -> tuple[int, int]:
    return env_id_range("MPDS_TITLE_IDS", DEFAULT_TITLE_RANGE)


def person_id_range() -> tuple[int, int]:
    return env_id_range("MPDS_PERSON_IDS", DEFAULT_PERSON_RANGE)


def partition_size() -> int:
    size = env_int("MPDS_PARTITION_SIZE", DEFAULT_PARTITION_SIZE)
    if size < 1:
        raise ValueError(f"MPDS_PARTITION_SIZE must be positive, got {size}")
    return size
