"""Automation that still grows the dataset while live IMDb blocks non-browser clients:
new Common Crawl releases (``new_archive_crawls``), OMDb on its daily quota
(``omdb_daily``), and a freshness view (``dataset_freshness``). Paused hosts
(sources/pauses.py) make them skip with the host and the date they try again.

Off by default like the rest of the automation (``MPDS_AUTOMATION=on`` or the UI).
The decisions are in ``sources/automation.py``; these are thin wrappers.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from .. import jobnames
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .freshness import SCHEDULE_DEFAULT, SENSOR_DEFAULT
from .jobs import title_crawl_job
from .partitions import TITLE_PARTITIONS

COMMON_CRAWL = "common_crawl"

omdb_job = define_asset_job(
    jobnames.OMDB_LOOKUPS,
    selection=AssetSelection.assets("omdb_titles", "title_records"),
    description="Ask OMDb (within the daily quota) for one title range's ids that lack a page, poster or plot, "
    "and merge the answers into its records.",
)


def _index_dir(layout, imdb: ImdbClientResource):
    from ..imdb.dataset_index import has_index

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
    minimum_interval_seconds=24 * 3600,
    default_status=SENSOR_DEFAULT,
    description="Reads Common Crawl's collinfo.json once a day; when a new crawl appears, crawls only the "
    "title ranges that still lack a page or a poster for some id, asking only the new crawl.",
)
def new_archive_crawls(
    context: SensorEvaluationContext, sources: SourcesResource, imdb: ImdbClientResource, data_dir: DataDirResource
):
    from ..sources.automation import describe_new_crawl, fetch_crawl_ids, host_of, new_crawls, partition_gaps
    from ..sources.common_crawl import CommonCrawlIndexError
    from ..sources.pauses import active_pause

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
    from ..imdb.partitions import parse_partition_key
    from ..sources.automation import days_to_done, omdb_pending_ids, projected_date

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
    from ..sources.automation import host_of
    from ..sources.omdb import OMDB_KEY_ENV, DailyQuota, api_key
    from ..sources.pauses import active_pause

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


automation_sensors = [new_archive_crawls]
automation_schedules = [omdb_daily]
automation_jobs = [omdb_job]
