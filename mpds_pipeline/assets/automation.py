"""Automation that still grows the dataset while live IMDb blocks non-browser clients:
new Common Crawl releases (``new_archive_crawls``), OMDb on its daily quota
(``omdb_daily``), and a freshness view (``dataset_freshness``). Paused hosts
(sources/pauses.py) make them skip with the host and the date they try again.

Off by default like the rest of the automation (``MPDS_AUTOMATION=on`` or the UI).
The decisions are in ``sources/automation.py``; these are thin wrappers.
"""

from __future__ import annotations

import json

from dagster import (
    AssetSelection,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from .. import jobnames
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .freshness import SENSOR_DEFAULT
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


automation_sensors = [new_archive_crawls]
automation_schedules: list = []
automation_jobs = [omdb_job]
