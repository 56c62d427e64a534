"""What the automation decides on, without Dagster: which partitions still lack pages or
posters (and so are worth asking a new Common Crawl release), which ids OMDb still owes,
which page sources a scheduled run may use while hosts are paused, and the freshness
figures (pending, done this week, projected completion).

The sensors and schedules in ``assets/automation.py`` call these; everything here reads
the data directory (outcomes, records, OMDb answers) and asks the network only in
``fetch_crawl_ids``.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from ..base import settings as env
from .pauses import DEFAULT_PAUSE_DAYS, HostPause, active_pause

# Outcomes whose id has no usable page yet: a later source or crawl may still have it.
NOT_YET_STATUSES = frozenset({"uncaptured", "failed", "blocked"})
LIVE = "live"


def pause_days() -> float:
    """The back-off after a host blocks the automation (``MPDS_PAUSE_DAYS``, default 7)."""
    return env.env_float("MPDS_PAUSE_DAYS", DEFAULT_PAUSE_DAYS)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


# --- new Common Crawl releases -----------------------------------------------------------------


def fetch_crawl_ids(index_url: str, client_settings, archive_settings) -> list[str]:
    """``collinfo.json``'s crawl ids, newest first, through the one HTTP client with the
    index host's politeness; raises CommonCrawlIndexError when it cannot be read."""
    from ..net.client import PoliteClient
    from .common_crawl import list_crawls

    async def read() -> list[str]:
        async with PoliteClient(archive_settings.client_settings(client_settings)) as client:
            return await list_crawls(client, index_url)

    return asyncio.run(read())


def new_crawls(seen: list[str], listed: list[str]) -> list[str]:
    """Crawls ``listed`` (newest first) that ``seen`` lacks, newest first."""
    known = set(seen)
    return [crawl for crawl in listed if crawl not in known]


@dataclass
class PartitionGaps:
    """The ids of one crawled title partition that a new source could still improve."""

    key: str
    no_page: list[int] = field(default_factory=list)  # uncaptured, failed, blocked, or never attempted
    no_poster: list[int] = field(default_factory=list)  # a page, but its record has no poster
    crawled: bool = True  # False: never crawled; its first crawl asks every crawl, not the sensor

    @property
    def missing(self) -> int:
        return len(set(self.no_page) | set(self.no_poster))


def partition_gaps(layout, key: str, index_dir: Path | None = None) -> PartitionGaps:
    """What partition ``key`` still lacks: ids with no usable page (their latest outcome
    uncaptured, failed or blocked, or ids the plan lists with no outcome) and ids whose
    record has no poster."""
    import pyarrow.parquet as pq

    from ..imdb.crawl import read_outcomes
    from ..imdb.crawl_plan import plan_partition
    from ..imdb.partitions import parse_partition_key

    pages_dir = layout.pages_dir("title", key)
    outcomes = {o.id: o for o in read_outcomes(pages_dir)} if pages_dir.exists() else {}
    if not outcomes:
        return PartitionGaps(key, crawled=False)
    planned = plan_partition(parse_partition_key(key), index_dir).ids if index_dir is not None else []
    no_page = sorted(
        {i for i, o in outcomes.items() if o.status in NOT_YET_STATUSES} | {i for i in planned if i not in outcomes}
    )
    records = layout.records_file("title", key)
    no_poster: list[int] = []
    if records.exists():
        rows = pq.read_table(records, columns=["id", "poster_url"]).to_pylist()
        no_poster = sorted(row["id"] for row in rows if not row["poster_url"])
    return PartitionGaps(key, no_page, no_poster)


def describe_new_crawl(crawl: str, gaps: list[PartitionGaps]) -> str:
    wanting = [g for g in gaps if g.missing]
    ids = sum(g.missing for g in wanting)
    return f"{crawl} is new: {len(wanting)} partition(s) with {ids} id(s) still missing"


# --- paused hosts and the page sources a scheduled run may use ----------------------------------


def usable_page_sources(
    page_sources: list[str], live_url: str, pauses_file: Path, now: datetime | None = None
) -> tuple[list[str], HostPause | None]:
    """The configured page sources minus live IMDb while its host is paused, and that
    pause (None when nothing was dropped)."""
    if LIVE not in page_sources:
        return list(page_sources), None
    pause = active_pause(pauses_file, host_of(live_url), now)
    if pause is None:
        return list(page_sources), None
    return [s for s in page_sources if s != LIVE], pause


# --- OMDb on its quota -------------------------------------------------------------------------


def omdb_pending_ids(layout, key: str, index_dir: Path | None = None) -> list[int]:
    """Ids of partition ``key`` OMDb would still be asked for: candidates (the index's ids,
    else those the crawl attempted that exist) without a complete record (poster and
    plot) and without an OMDb answer. Read from the records file, not the WARC, so a
    schedule tick stays cheap; newest (highest) ids first."""
    import pyarrow.parquet as pq

    from ..imdb.crawl import read_outcomes
    from ..imdb.dataset_index import has_index, ids_to_crawl
    from ..imdb.partitions import parse_partition_key
    from .omdb import omdb_candidates
    from .omdb_answers import read_answers

    id_range = parse_partition_key(key)
    pages_dir = layout.pages_dir("title", key)
    index_ids = None
    if index_dir is not None and has_index(index_dir):
        index_ids = ids_to_crawl(index_dir, id_range.first, id_range.last, probe_beyond_index=False)
    outcomes = read_outcomes(pages_dir) if pages_dir.exists() else []
    candidates = omdb_candidates(outcomes, index_ids)
    complete: set[int] = set()
    records = layout.records_file("title", key)
    if records.exists():
        rows = pq.read_table(records, columns=["id", "poster_url", "synopsis"]).to_pylist()
        complete = {row["id"] for row in rows if row["poster_url"] and row["synopsis"]}
    answered = set(read_answers(layout.omdb(key).answers)[0])
    return sorted((i for i in candidates if i not in complete and i not in answered), reverse=True)


def days_to_done(pending: int, per_day: float) -> int | None:
    """Whole days to work through ``pending`` at ``per_day``; None when nothing moves."""
    if pending <= 0:
        return 0
    return math.ceil(pending / per_day) if per_day > 0 else None


def projected_date(pending: int, per_day: float, today: date | None = None) -> str:
    days = days_to_done(pending, per_day)
    if days is None:
        return "never at the current rate"
    today = today or datetime.now(timezone.utc).date()
    return (today + timedelta(days=days)).isoformat()


# --- freshness: what each source gave, and when ------------------------------------------------


@dataclass
class SourceFreshness:
    source: str
    newest: str | None = None  # newest crawl id / capture day / answer day used
    done_total: int = 0
    done_this_week: int = 0

    def row(self) -> dict:
        return {
            "source": self.source,
            "newest_used": self.newest or "-",
            "ids_done": self.done_total,
            "ids_done_this_week": self.done_this_week,
        }


def freshness(layout, keys: list[str], now: datetime | None = None) -> tuple[dict[str, SourceFreshness], Counter]:
    """Per page source and OMDb: the newest release or day used and the ids it gave (in
    all, and in the last 7 days); and the titles with a usable page per day (when each
    id's page was stored: the dataset's size over time)."""
    from ..imdb.crawl import read_outcomes
    from .omdb_answers import read_answers

    now = now or datetime.now(timezone.utc)
    week_ago = now - timedelta(days=7)
    by_source: dict[str, SourceFreshness] = {}
    per_day: Counter = Counter()
    for key in keys:
        pages_dir = layout.pages_dir("title", key)
        for o in read_outcomes(pages_dir) if pages_dir.exists() else []:
            if o.status != "ok":
                continue
            fetched = datetime.fromisoformat(o.fetched_at) if o.fetched_at else None
            entry = by_source.setdefault(o.source or LIVE, SourceFreshness(o.source or LIVE))
            entry.done_total += 1
            if fetched is not None:
                per_day[fetched.date().isoformat()] += 1
                entry.done_this_week += fetched >= week_ago
            newest = o.capture_crawl or _day(o.capture_timestamp) or (o.fetched_at or "")[:10] or None
            if newest and (entry.newest is None or newest > entry.newest):
                entry.newest = newest
        answers = layout.omdb(key).answers
        if answers.exists():
            entry = by_source.setdefault("omdb", SourceFreshness("omdb"))
            for line in read_answers(answers)[0].values():
                entry.done_total += 1
                day = (line.retrieved_at or "")[:10]
                if day:
                    entry.newest = max(entry.newest or day, day)
                    entry.done_this_week += day >= week_ago.date().isoformat()
    return by_source, per_day


def _day(timestamp: str | None) -> str | None:
    """``20110927123456`` -> ``2011-09-27`` (a capture's day)."""
    if not timestamp or len(timestamp) < 8:
        return None
    return f"{timestamp[:4]}-{timestamp[4:6]}-{timestamp[6:8]}"


def cumulative(per_day: Counter) -> list[tuple[str, int]]:
    total, out = 0, []
    for day in sorted(per_day):
        total += per_day[day]
        out.append((day, total))
    return out
