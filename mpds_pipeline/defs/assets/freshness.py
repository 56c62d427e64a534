"""Keeping the dataset fresh: the IMDb dataset index (refreshed daily), the sensor that
extends the crawl past the highest id seen, and the re-crawl of incomplete records.

All three are off by default (they talk to IMDb): switch them on in the UI's
Automation tab, or set MPDS_AUTOMATION=on before loading the code location.
"""

from dagster import (
    AddDynamicPartitionsRequest,
    AssetExecutionContext,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)
from pydantic import Field

from ...base import settings
from ...imdb.partitions import id_ranges, parse_partition_key, partition_size
from ..jobs import refresh_index_job, title_crawl_job
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .metadata import tabulate
from .partitions import PARTITIONS, TITLE_PARTITIONS, missing_configured_keys

INDEX_GROUP = "index"
_ON = settings.env_str("MPDS_AUTOMATION", "").lower() in ("1", "on", "true", "yes")
SENSOR_DEFAULT = DefaultSensorStatus.RUNNING if _ON else DefaultSensorStatus.STOPPED
SCHEDULE_DEFAULT = DefaultScheduleStatus.RUNNING if _ON else DefaultScheduleStatus.STOPPED


class IndexConfig(Config):
    chunk_rows: int = Field(200_000, description="rows converted at a time: bounds memory")


@asset(group_name=INDEX_GROUP, kinds={"python", "parquet"})
def imdb_index(
    context: AssetExecutionContext, config: IndexConfig, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    """IMDb's non-commercial dataset files (title.basics, name.basics, title.principals),
    streamed to disk and converted to Parquet in bounded memory. With it, the crawl asks
    only for titles that exist, skips adult titles up front and picks actors by profession."""
    from ...imdb.dataset_files import fetch_dataset_files
    from ...imdb.dataset_index import build_index, max_person_id, max_title_id

    index = data_dir.layout.index
    report = fetch_dataset_files(
        imdb.datasets_url, index.raw_dir, client_settings=imdb.client_settings(), log=context.log.info
    )
    result = build_index(index.raw_dir, index.path, chunk_rows=config.chunk_rows, log=context.log.info)
    return MaterializeResult(
        metadata=tabulate(
            {
                **report.to_metadata(),
                **result.to_metadata(),
                "max_title_id": max_title_id(index.path),
                "max_person_id": max_person_id(index.path),
                "index_dir": MetadataValue.path(str(index.path)),
            }
        )
    )


daily_index_refresh = ScheduleDefinition(
    name="daily_index_refresh",
    job=refresh_index_job,
    cron_schedule="0 4 * * *",
    default_status=SCHEDULE_DEFAULT,
    description="Download IMDb's dataset files again (skipped when unchanged) and rebuild the index.",
)


def highest_known_title_id(layout) -> int:
    """The highest title id the index lists or the crawl found."""
    from ...imdb.crawl import read_outcomes
    from ...imdb.dataset_index import has_index, max_title_id

    highest = max_title_id(layout.index_dir) if has_index(layout.index_dir) else 0
    pages = layout.pages_root("title")
    for folder in pages.glob("*") if pages.exists() else []:
        ok = [o.id for o in read_outcomes(folder) if o.status == "ok"]
        highest = max([highest, *ok])
    return highest


def ranges_to_add(known_keys: list[str], highest_id: int, size: int) -> list[str]:
    """New title ranges after the last known one, up to the range holding ``highest_id``."""
    last = max((parse_partition_key(k).last for k in known_keys), default=0)
    if highest_id <= last:
        return []
    # Whole ranges, so ids that appear later fall into a range that already exists.
    end = last + size * -(-(highest_id - last) // size)
    return [r.key for r in id_ranges("title", last + 1, end, size)]


def crawl_sources(sources: SourcesResource, imdb: ImdbClientResource, layout) -> tuple[dict | None, str | None]:
    """The run config that keeps a scheduled crawl off a paused live IMDb (the configured
    page sources without ``live``), and why: (None, None) when nothing is paused, (None,
    reason) when no source is left to ask."""
    from ...sources.automation import usable_page_sources

    usable, pause = usable_page_sources(sources.page_sources, imdb.base_url, layout.paused_hosts_file)
    if pause is None:
        return None, None
    if not usable:
        return None, f"no run launched: {pause.describe()}"
    return {"resources": {"sources": {"config": {"page_sources": usable}}}}, f"live IMDb left out: {pause.describe()}"


@sensor(
    job=title_crawl_job,
    minimum_interval_seconds=3600,
    default_status=SENSOR_DEFAULT,
    description="Registers the configured id ranges, and adds title ranges past the highest id seen "
    "(new titles in the index or the crawl) as new partitions, each with a crawl run.",
)
def crawl_ranges(
    context: SensorEvaluationContext, data_dir: DataDirResource, sources: SourcesResource, imdb: ImdbClientResource
):
    instance = context.instance
    requests = []
    for kind, partitions in PARTITIONS.items():
        missing = missing_configured_keys(instance, kind)
        if missing:
            requests.append(AddDynamicPartitionsRequest(partitions.name, missing))
    known = instance.get_dynamic_partitions(TITLE_PARTITIONS.name) + [k for r in requests[:1] for k in r.partition_keys]
    new_keys = ranges_to_add(known, highest_known_title_id(data_dir.layout), partition_size())
    if not requests and not new_keys:
        return SkipReason("no new ranges: nothing beyond the highest id seen")
    if new_keys:
        requests.append(AddDynamicPartitionsRequest(TITLE_PARTITIONS.name, new_keys))
    run_config, paused = crawl_sources(sources, imdb, data_dir.layout)
    if paused:
        context.log.info(paused)
    if paused and run_config is None:
        # The ranges are still registered; their runs wait until the host may be asked again.
        return SensorResult(skip_reason=SkipReason(paused), dynamic_partitions_requests=requests)
    return SensorResult(
        run_requests=[
            RunRequest(partition_key=key, run_key=f"new-range-{key}", run_config=run_config or {}) for key in new_keys
        ],
        dynamic_partitions_requests=requests,
    )


@sensor(
    job=title_crawl_job,
    minimum_interval_seconds=24 * 3600,
    default_status=SENSOR_DEFAULT,
    description="Re-crawls partitions holding titles whose poster or plot was missing, once their "
    "page is older than MPDS_RECRAWL_AFTER_DAYS (default 30).",
)
def recrawl_incomplete(
    context: SensorEvaluationContext, data_dir: DataDirResource, sources: SourcesResource, imdb: ImdbClientResource
):
    from ...imdb.crawl_plan import stale_incomplete_ids

    after_days = settings.env_float("MPDS_RECRAWL_AFTER_DAYS", 30.0)
    layout = data_dir.layout
    source_config, paused = crawl_sources(sources, imdb, layout)
    if paused and source_config is None:
        return SkipReason(paused)
    requests = []
    for key in context.instance.get_dynamic_partitions(TITLE_PARTITIONS.name):
        stale = stale_incomplete_ids(layout.records_file("title", key), layout.pages_dir("title", key), after_days)
        if stale:
            requests.append(
                RunRequest(
                    partition_key=key,
                    run_key=f"recrawl-{key}-{context.cursor or 0}",
                    run_config={
                        "ops": {"title_pages": {"config": {"recrawl_incomplete_after_days": after_days}}},
                        **(source_config or {}),
                    },
                )
            )
    context.update_cursor(str(int(context.cursor or 0) + 1))
    return requests or SkipReason("no incomplete records old enough to revisit")


freshness_schedules = [daily_index_refresh]
freshness_sensors = [crawl_ranges, recrawl_incomplete]
