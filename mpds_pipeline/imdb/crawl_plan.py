"""Which ids a crawl partition requests: every id (the paper's probing), only the ids
IMDb's dataset index lists, and which archived ids the re-crawl policy revisits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .partitions import IdRange


@dataclass
class CrawlPlan:
    ids: list[int]
    source: str  # "index" or "probe"
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> ids not requested
    refetch: list[int] = field(default_factory=list)  # archived ids to fetch again

    def metadata(self) -> dict:
        return {
            "id_source": self.source,
            "ids_planned": len(self.ids),
            **{f"skipped_{reason}": count for reason, count in self.skipped.items()},
            "recrawl_ids": len(self.refetch),
        }


def plan_partition(
    id_range: IdRange,
    index_dir: Path | None,
    *,
    records_file: Path | None = None,
    outcomes_dir: Path | None = None,
    recrawl_incomplete_after_days: float | None = None,
    now: datetime | None = None,
) -> CrawlPlan:
    """Plan one partition. With an index, titles that do not exist or are adult, and
    persons who are not actors, are never requested; without one every id is probed."""
    from . import dataset_index

    if index_dir is not None and dataset_index.has_index(index_dir, "titles" if id_range.kind == "title" else "names"):
        if id_range.kind == "title":
            picked = dataset_index.ids_to_crawl(index_dir, id_range.first, id_range.last, skip_adult=True)
            plan = CrawlPlan(list(picked), "index", dict(picked.skipped))
        else:
            actors = dataset_index.actor_ids(index_dir, id_range.ids())
            highest = dataset_index.max_person_id(index_dir)
            beyond = [i for i in id_range.ids() if i > highest]  # newer than the index: probe
            ids = sorted(actors | set(beyond))
            plan = CrawlPlan(ids, "index", {"not_an_actor_or_absent": len(id_range) - len(ids)})
    else:
        plan = CrawlPlan(list(id_range.ids()), "probe")
    if recrawl_incomplete_after_days is not None and id_range.kind == "title" and records_file and outcomes_dir:
        plan.refetch = stale_incomplete_ids(records_file, outcomes_dir, recrawl_incomplete_after_days, now)
    return plan


def stale_incomplete_ids(
    records_file: Path, outcomes_dir: Path, after_days: float, now: datetime | None = None
) -> list[int]:
    """Title ids whose record lacks a poster or a plot and was fetched over ``after_days`` ago."""
    import pyarrow.parquet as pq

    from .crawl import read_outcomes

    if not Path(records_file).exists():
        return []
    table = pq.read_table(records_file, columns=["id", "poster_url", "synopsis"]).to_pylist()
    incomplete = {row["id"] for row in table if not row["poster_url"] or not row["synopsis"]}
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=after_days)
    stale = []
    for outcome in read_outcomes(outcomes_dir):
        if outcome.id in incomplete and outcome.fetched_at and datetime.fromisoformat(outcome.fetched_at) < cutoff:
            stale.append(outcome.id)
    return sorted(stale)
