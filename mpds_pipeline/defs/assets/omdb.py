"""``omdb_titles``: OMDb's answers for a title partition's ids that no page fully describes."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from ...imdb.partitions import parse_partition_key
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .crawl import CRAWL_GROUP, title_assets
from .metadata import counts_table, tabulate
from .partitions import TITLE_PARTITIONS, require_registered


@asset(
    partitions_def=TITLE_PARTITIONS,
    deps=[title_assets[0]],
    group_name=CRAWL_GROUP,
    kinds={"python", "parquet"},
    description="OMDb's answers (by IMDb id, within the daily quota) for the partition's titles that have no "
    "usable page or whose page lacks a poster or plot; title_records merges them field by field. "
    "Does nothing without MPDS_OMDB_API_KEY.",
)
def omdb_titles(
    context: AssetExecutionContext, sources: SourcesResource, imdb: ImdbClientResource, data_dir: DataDirResource
) -> MaterializeResult:
    from ...base.parent_watch import parent_gone_check
    from ...sources.omdb import OmdbBusy, OmdbKeyRefused, api_key, omdb_partition
    from ...sources.omdb_quota import DailyQuota

    require_registered(context.instance, "title", context.partition_key)
    layout = data_dir.layout
    id_range = parse_partition_key(context.partition_key)
    folder = layout.omdb(context.partition_key)
    quota = DailyQuota(layout.omdb_usage_file, sources.omdb_daily_quota)
    try:
        result = omdb_partition(
            layout.pages_dir("title", context.partition_key),
            folder,
            id_range.first,
            id_range.last,
            key=api_key(),
            base_url=sources.omdb_url,
            settings=imdb.client_settings(),
            quota=quota,
            index_dir=layout.index_dir if imdb.use_index else None,
            rate_per_second=sources.omdb_rate_per_second,
            should_stop=parent_gone_check(),
            log=context.log.info,
            pauses_file=layout.paused_hosts_file,
        )
    except (OmdbKeyRefused, OmdbBusy) as error:
        raise Failure(description=str(error), metadata={"answers": MetadataValue.path(str(folder.answers))}) from error
    if result.run is not None and result.run.stopped:
        context.log.info(f"omdb_titles stopped ({result.run.stopped}): {result.run.remaining} ids left for a later run")
    run, today = result.run, quota.status()
    metadata = {
        "partition": context.partition_key,
        **result.metadata(),
        "quota_per_day": sources.omdb_daily_quota,
        "quota_used_today": today["requests"],
        "answers": MetadataValue.path(str(folder.answers)),
        "path": MetadataValue.path(str(folder.records)),
    }
    if run is not None and run.requests_by_host:
        metadata["requests_by_host"] = counts_table(run.requests_by_host, "host")
    refused_hosts = sorted(result.records.poster_hosts() - imdb.client_settings().allowed_hosts())
    if refused_hosts:
        # poster_images would refuse these posters: say which setting to change now, not there.
        metadata["poster_hosts_not_allowed"] = ", ".join(refused_hosts)
        context.log.warning(
            f"OMDb's posters on {', '.join(refused_hosts)} would be refused: add the host(s) to the imdb "
            "resource's extra_allowed_hosts"
        )
    return MaterializeResult(metadata=tabulate(metadata))
