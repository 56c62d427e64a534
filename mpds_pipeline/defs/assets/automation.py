"""Automation that still grows the dataset while live IMDb blocks non-browser clients:
new Common Crawl releases (``new_archive_crawls``), OMDb on its daily quota
(``omdb_daily``), and a freshness view (``dataset_freshness``). Paused hosts
(sources/pauses.py) make them skip with the host and the date they try again.

Off by default like the rest of the automation (``MPDS_AUTOMATION=on`` or the UI).
The decisions are in ``sources/automation.py``; these are thin wrappers.
"""

import json
from datetime import datetime, timezone

from dagster import (
    AssetExecutionContext,
    AssetSelection,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    schedule,
    sensor,
)

from ...base import jobnames, settings
from ..jobs import title_crawl_job
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .freshness import INDEX_GROUP, SCHEDULE_DEFAULT, SENSOR_DEFAULT
from .partitions import TITLE_PARTITIONS

COMMON_CRAWL = "common_crawl"

omdb_job = define_asset_job(
    jobnames.OMDB_LOOKUPS,
    selection=AssetSelection.assets("omdb_titles", "title_records"),
    description="Ask OMDb (within the daily quota) for one title range's ids that lack a page, poster or plot, "
    "and merge the answers into its records.",
)


def _index_dir(layout, imdb: ImdbClientResource):
    from ...imdb.dataset_index import has_index

    return layout.index_dir if imdb.use_index and has_index(layout.index_dir) else None


def _read_cursor(cursor: str | None) -> dict:
    try:
        return json.loads(cursor) if cursor else {}
    except ValueError:
        return {}


def new_crawl_run_config(crawl: str, refetch_posterless: bool) -> dict:
    """One partition's run asking only ``crawl`` of Common Crawl (the capture policy that
    names one crawl asks that crawl alone), for the ids the archive still lacks."""
    config: dict = {
        "resources": {"sources": {"config": {"page_sources": [COMMON_CRAWL], "capture_policy": crawl}}},
    }
    if refetch_posterless:
        # Records without a poster are refetched (from this crawl only): a newer capture may show one.
        config["ops"] = {"title_pages": {"config": {"recrawl_incomplete_after_days": 0}}}
    return config


@sensor(
    job=title_crawl_job,
    # collinfo.json at most once a day (a new crawl comes about monthly); shorter for a walk-through.
    minimum_interval_seconds=settings.env_int("MPDS_NEW_CRAWL_INTERVAL_S", 24 * 3600),
    default_status=SENSOR_DEFAULT,
    description="Reads Common Crawl's collinfo.json once a day (MPDS_NEW_CRAWL_INTERVAL_S); when a new crawl "
    "appears, crawls only the title ranges that still lack a page or a poster for some id, asking only the new crawl.",
)
def new_archive_crawls(
    context: SensorEvaluationContext, sources: SourcesResource, imdb: ImdbClientResource, data_dir: DataDirResource
):
    from ...sources.automation import describe_new_crawl, fetch_crawl_ids, host_of, new_crawls, partition_gaps
    from ...sources.common_crawl import CommonCrawlIndexError
    from ...sources.pauses import active_pause

    if COMMON_CRAWL not in sources.page_sources:
        return SkipReason(f"{COMMON_CRAWL} is not among the page sources ({', '.join(sources.page_sources)})")
    layout = data_dir.layout
    pause = active_pause(layout.paused_hosts_file, host_of(sources.cc_index_url))
    if pause is not None:
        return SkipReason(pause.describe())
    try:
        listed = fetch_crawl_ids(
            sources.cc_index_url, imdb.client_settings(), sources.archive_settings(imdb.max_page_bytes)
        )
    except CommonCrawlIndexError as error:
        return SkipReason(f"collinfo.json not read, tried again at the next tick: {error}")
    state = _read_cursor(context.cursor)
    seen = state.get("seen")
    if seen is None:
        # The first tick only learns the list: the partitions' first crawls ask those crawls anyway.
        context.update_cursor(json.dumps({"seen": listed}))
        return SkipReason(f"{len(listed)} crawls known, newest {listed[0] if listed else '-'}; waiting for a new one")
    fresh = new_crawls(seen, listed)
    if not fresh:
        return SkipReason(f"no new crawl: newest is {listed[0] if listed else '-'} ({len(listed)} known)")
    index_dir = _index_dir(layout, imdb)
    keys = context.instance.get_dynamic_partitions(TITLE_PARTITIONS.name)
    gaps = [partition_gaps(layout, key, index_dir) for key in keys]
    requests, messages = [], []
    for crawl in fresh:
        wanting = [g for g in gaps if g.crawled and g.missing]
        messages.append(describe_new_crawl(crawl, wanting))
        for g in wanting:
            requests.append(
                RunRequest(
                    partition_key=g.key,
                    # One run per crawl and partition, ever: a repeated tick launches nothing.
                    run_key=f"{crawl}-{g.key}",
                    run_config=new_crawl_run_config(crawl, bool(g.no_poster)),
                    tags={"mpds/new_crawl": crawl, "mpds/missing_ids": str(g.missing)},
                )
            )
    uncrawled = sum(1 for g in gaps if not g.crawled)
    if uncrawled:
        messages.append(f"{uncrawled} partition(s) never crawled are left to their first crawl")
    context.update_cursor(json.dumps({"seen": sorted(set(seen) | set(listed))}))
    context.log.info("; ".join(messages))
    return requests or SkipReason("; ".join(messages))


def omdb_plan(layout, keys: list[str], index_dir, quota: int, used_today: int, today=None) -> dict:
    """Which partitions today's OMDb run asks (newest ids first, about a day's quota of
    pending ids), and the status: ids pending, days and date they are done at the quota."""
    from ...imdb.partitions import parse_partition_key
    from ...sources.automation import days_to_done, omdb_pending_ids, projected_date

    left = max(0, quota - used_today)
    pending = {key: omdb_pending_ids(layout, key, index_dir) for key in keys}
    total = sum(len(ids) for ids in pending.values())
    chosen, covered = [], 0
    for key in sorted(keys, key=lambda k: parse_partition_key(k).last, reverse=True):
        if covered >= left:
            break
        if pending[key]:
            chosen.append(key)
            covered += len(pending[key])
    return {
        "partitions": chosen,
        "pending": total,
        "quota_left_today": left,
        "days_to_done": days_to_done(total, quota),
        "done_by": projected_date(total, quota, today),
        "status": f"{total} id(s) pending OMDb; at {quota}/day done by {projected_date(total, quota, today)}",
    }


@schedule(
    job=omdb_job,
    # Just after OMDb's day starts (UTC midnight is the safe guess): a day's quota, newest ids first.
    cron_schedule="15 0 * * *",
    default_status=SCHEDULE_DEFAULT,
    description="Spreads OMDb look-ups for ids still lacking a page, poster or plot over days at the daily "
    "quota (MPDS_OMDB_DAILY_QUOTA, default 1,000), newest title ranges first; each run resumes where the last "
    "stopped. Skips while OMDb is paused (its 'Request limit reached!') or without MPDS_OMDB_API_KEY.",
)
def omdb_daily(
    context: ScheduleEvaluationContext, sources: SourcesResource, imdb: ImdbClientResource, data_dir: DataDirResource
):
    from ...sources.automation import host_of
    from ...sources.omdb import OMDB_KEY_ENV, api_key
    from ...sources.omdb_quota import DailyQuota
    from ...sources.pauses import active_pause

    if api_key() is None:
        return SkipReason(f"{OMDB_KEY_ENV} is not set: OMDb is not asked")
    layout = data_dir.layout
    now = context.scheduled_execution_time
    pause = active_pause(layout.paused_hosts_file, host_of(sources.omdb_url), now)
    if pause is not None:
        return SkipReason(pause.describe())
    used = DailyQuota(layout.omdb_usage_file, sources.omdb_daily_quota).status()["requests"]
    keys = context.instance.get_dynamic_partitions(TITLE_PARTITIONS.name)
    plan = omdb_plan(
        layout,
        keys,
        _index_dir(layout, imdb),
        sources.omdb_daily_quota,
        used,
        now.date() if now else None,
    )
    context.log.info(plan["status"])
    if not plan["pending"]:
        return SkipReason("no id is pending OMDb")
    if not plan["partitions"]:
        return SkipReason(f"today's OMDb quota is spent; {plan['status']}")
    day = (now or datetime.now(timezone.utc)).date().isoformat()
    return [
        RunRequest(
            partition_key=key,
            # One run per partition and day: a repeated tick is a no-op, tomorrow's resumes.
            run_key=f"omdb-{day}-{key}",
            tags={"mpds/omdb_pending": str(plan["pending"]), "mpds/omdb_done_by": plan["done_by"]},
        )
        for key in plan["partitions"]
    ]


@asset(
    group_name=INDEX_GROUP,
    kinds={"python"},
    description="How fresh the dataset is: per source (Common Crawl, Wayback, live, OMDb) the newest release or "
    "day used, ids done (in all and this week), ids pending and the projected date the dataset is complete at "
    "this week's rate; titles with a page by day. Reads the data directory only (no network). Its numeric "
    "metadata (titles_with_page, ids_pending) is plotted over materializations in the asset's Plots tab.",
)
def dataset_freshness(
    context: AssetExecutionContext, sources: SourcesResource, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    import pandas as pd

    from ...sources.automation import cumulative, freshness, omdb_pending_ids, partition_gaps, projected_date
    from ...sources.pauses import active_pauses

    layout = data_dir.layout
    keys = context.instance.get_dynamic_partitions(TITLE_PARTITIONS.name)
    index_dir = _index_dir(layout, imdb)
    by_source, per_day = freshness(layout, keys)
    gaps = [partition_gaps(layout, key, index_dir) for key in keys]
    pages_pending = sum(len(g.no_page) for g in gaps)
    omdb_pending = sum(len(omdb_pending_ids(layout, key, index_dir)) for key in keys)
    rows = []
    for name, entry in sorted(by_source.items()):
        pending = omdb_pending if name == "omdb" else pages_pending
        rate = entry.done_this_week / 7
        rows.append({**entry.row(), "ids_pending": pending, "complete_by": projected_date(pending, rate)})
    for name in [*sources.page_sources, *(["omdb"] if "omdb" not in by_source else [])]:
        if name not in by_source:
            pending = omdb_pending if name == "omdb" else pages_pending
            rows.append(
                {
                    "source": name,
                    "newest_used": "-",
                    "ids_done": 0,
                    "ids_done_this_week": 0,
                    "ids_pending": pending,
                    "complete_by": projected_date(pending, 0),
                }
            )
    history = cumulative(per_day)
    size = pd.DataFrame(history, columns=["day", "titles_with_page"])
    week = sum(entry.done_this_week for name, entry in by_source.items() if name != "omdb")
    metadata = {
        "titles_with_page": int(history[-1][1]) if history else 0,
        "ids_pending": pages_pending,
        "omdb_ids_pending": omdb_pending,
        "partitions": len(keys),
        "partitions_never_crawled": sum(1 for g in gaps if not g.crawled),
        "complete_by": projected_date(pages_pending, week / 7),
        "sources": MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False)) if rows else "none yet",
        "size_over_time": MetadataValue.md(_size_chart(history) + "\n\n" + size.to_markdown(index=False))
        if history
        else "no page yet",
        "paused_hosts": "; ".join(p.describe() for p in active_pauses(layout.paused_hosts_file)) or "none",
    }
    return MaterializeResult(metadata=metadata)


def _size_chart(history: list[tuple[str, int]], width: int = 40) -> str:
    """Titles with a page over time as a text bar chart (the metadata view renders Markdown, not images)."""
    top = max(total for _, total in history) or 1
    lines = [f"{day} {'█' * max(1, round(width * total / top))} {total}" for day, total in history]
    return "```\n" + "\n".join(lines) + "\n```"


freshness_job = define_asset_job(
    jobnames.FRESHNESS,
    selection=AssetSelection.assets("dataset_freshness"),
    description="Recompute the freshness view (no network).",
)
daily_freshness = ScheduleDefinition(
    name="daily_freshness",
    job=freshness_job,
    cron_schedule="0 6 * * *",
    default_status=SCHEDULE_DEFAULT,
    description="Recompute dataset_freshness once a day, after the night's crawls.",
)

automation_sensors = [new_archive_crawls]
automation_schedules = [omdb_daily, daily_freshness]
automation_jobs = [omdb_job, freshness_job]
automation_assets = [dataset_freshness]
