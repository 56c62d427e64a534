"""Crawl assets: ``title_pages`` -> ``title_records`` and ``person_pages`` -> ``person_records``.

Each is partitioned by id range. ``*_pages`` fetches the range politely into a WARC
archive with one status per attempted id; ``*_records`` parses that archive (no network).
"""

import time

import pandas as pd
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from ...base import settings
from ...imdb.partitions import parse_partition_key
from ...imdb.records import FETCH_STATUSES
from ..checks import check_result
from ..pool_slots import IMDB_POOL
from ..resources import DataDirResource, ImdbClientResource, SourcesResource
from .metadata import counts_table, preview_table, tabulate
from .partitions import PERSON_PARTITIONS, TITLE_PARTITIONS, require_registered

CRAWL_GROUP = "crawl"


def _crawl_metadata(result, partition_key: str, archive_dir) -> dict:
    counts = result.status_counts()
    metadata = {
        "partition": partition_key,
        "attempted": sum(counts.values()),
        **{f"status_{status}": counts.get(status, 0) for status in FETCH_STATUSES},
        "unattempted": len(result.unattempted_ids),
        "requests_made": result.requests_made,
        "requests_by_host": counts_table(result.requests_by_host, "host") if result.requests_by_host else None,
        # MPDS_RATE, or lower when robots.txt asks a Crawl-delay.
        "rate_per_second": round(result.rate_per_second, 3),
        "elapsed_s": round(result.elapsed_s, 2),
        "pages_per_s": round(result.pages_per_s, 2),
        # The index's goal: close to one request per kept page (robots.txt and retries count).
        "requests_per_ok_page": round(result.requests_made / counts["ok"], 3) if counts.get("ok") else None,
        "archive": MetadataValue.path(str(archive_dir)),
        **_coverage_metadata(result),
        # A torn last record left by an earlier run (killed, or the disk was full), cut off.
        "repaired_tail_bytes": result.repaired_tail_bytes,
    }
    return {key: value for key, value in metadata.items() if value is not None}


def _coverage_metadata(result) -> dict:
    """Per archive source: ids asked, ids with a usable capture, what was skipped; and
    the kept pages per year of capture (the era of the layouts parsed)."""
    from ...sources.archived_pages import captures_per_year

    if not result.coverage:
        return {}
    sources = pd.DataFrame([{"source": name, **counts} for name, counts in result.coverage.items()])
    years = captures_per_year(result.outcomes)
    return {
        "source_coverage": MetadataValue.md(sources.to_markdown(index=False)),
        "ids_with_capture": int(sum(c.get("captured", 0) for c in result.coverage.values())),
        "captures_per_year": counts_table(years, "year") if years else None,
    }


class RecordsConfig(Config):
    field_order: str = Field(
        default_factory=lambda: settings.env_str("MPDS_FIELD_ORDER", ""),
        description="title records: which source gives each field, e.g. 'poster_url=omdb,page;synopsis=page' "
        "(sources: index, page, omdb); fields left out keep the default order (sources/field_order.py)",
    )


class CrawlConfig(Config):
    recrawl_incomplete_after_days: float | None = Field(
        None, description="refetch archived titles whose record lacks a poster or plot and is older than this"
    )
    photo_galleries: bool = Field(
        True,
        description="person pages: fetch /name/nm…/mediaindex once for actors whose page "
        "shows too few photos of them alone",
    )
    min_solo_photos: int = Field(
        3, description="person pages: fewer photos of the actor alone than this fetch the gallery"
    )


def _unpaused_sources(context, sources: SourcesResource, imdb: ImdbClientResource, layout) -> list[str]:
    """The configured page sources without live IMDb while its host is paused (a WAF
    block): a run asks nothing of a host that blocks it. Refuses the run when nothing is left."""
    from ...sources.automation import usable_page_sources

    usable, pause = usable_page_sources(sources.page_sources, imdb.base_url, layout.paused_hosts_file)
    if pause is not None:
        if not usable:
            raise Failure(
                description=f"{pause.describe()}. No request sent. Wait, or clear the pause by removing "
                f"its entry from {layout.paused_hosts_file}."
            )
        context.log.info(f"live IMDb left out of the page sources: {pause.describe()}")
    return usable


def _pause_live(context, imdb: ImdbClientResource, layout, reason: str) -> None:
    from ...sources.automation import host_of, pause_days
    from ...sources.pauses import pause_host

    pause = pause_host(layout.paused_hosts_file, host_of(imdb.base_url), reason, days=pause_days())
    context.log.warning(f"automation paused: {pause.describe()}")


def build_crawl_assets(kind: str, partitions: DynamicPartitionsDefinition):
    """The pages asset and the records asset of one page kind, each checked as it is written."""
    pages_name, records_name = f"{kind}_pages", f"{kind}_records"

    @asset(
        name=pages_name,
        partitions_def=partitions,
        group_name=CRAWL_GROUP,
        kinds={"python", "warc"},
        pool=IMDB_POOL,
        description=f"IMDb {kind} pages of one id range, from the configured page sources in order "
        "(Common Crawl, the Wayback Machine, live IMDb), fetched politely into a gzip WARC archive with "
        "their provenance; one status per attempted id (ok, missing, redirect, blocked, failed, uncaptured).",
        check_specs=[
            AssetCheckSpec(
                "one_status_per_id",
                asset=pages_name,
                description=(
                    "Every attempted id of the partition has exactly one status; blocked ids are reported (a warning), "
                    "not silently absent."
                ),
            )
        ],
    )
    def pages_asset(
        context: AssetExecutionContext,
        config: CrawlConfig,
        imdb: ImdbClientResource,
        sources: SourcesResource,
        data_dir: DataDirResource,
    ) -> MaterializeResult:
        from ...base.files import DiskFull, is_disk_full
        from ...base.parent_watch import exit_orphaned_step, parent_gone_check
        from ...imdb.archive import PartitionBusy
        from ...imdb.crawl import CrawlStopped, ImdbBlockingError, crawl_partition, one_status_per_id, read_outcomes
        from ...imdb.crawl_plan import plan_partition
        from ...sources.archived_pages import archive_crawler

        require_registered(context.instance, kind, context.partition_key)
        layout = data_dir.layout
        page_sources = _unpaused_sources(context, sources, imdb, layout)
        id_range = parse_partition_key(context.partition_key)
        archive_dir = layout.pages_dir(kind, context.partition_key)
        plan = plan_partition(
            id_range,
            layout.index_dir if imdb.use_index else None,
            records_file=layout.records_file(kind, context.partition_key),
            outcomes_dir=archive_dir,
            recrawl_incomplete_after_days=config.recrawl_incomplete_after_days,
        )
        watch = parent_gone_check()
        try:
            result = crawl_partition(
                kind,
                plan.ids,
                imdb.client_settings(),
                archive_dir,
                page_sources=page_sources,
                archive_crawl=archive_crawler(sources.archive_settings(imdb.max_page_bytes)),
                **imdb.crawl_options(),
                refetch=plan.refetch,
                should_stop=watch,
                log=context.log.info,
                label=f"{pages_name} {context.partition_key}",
                run_id=context.run.run_id,
            )
            gallery = {}
            # Galleries come from live IMDb only: asked when the crawl may ask it.
            if kind == "person" and config.photo_galleries and "live" in page_sources:
                from ...imdb.galleries import crawl_galleries

                gallery = crawl_galleries(
                    archive_dir,
                    imdb.client_settings(),
                    min_solo_photos=config.min_solo_photos,
                    **imdb.crawl_options(),
                    should_stop=watch,
                    log=context.log.info,
                    label=f"person galleries {context.partition_key}",
                    run_id=context.run.run_id,
                ).metadata()
        except PartitionBusy as busy:
            raise Failure(description=str(busy)) from busy
        except OSError as error:
            if not is_disk_full(error):
                raise
            full = error if isinstance(error, DiskFull) else DiskFull(error.filename or archive_dir, "")
            raise Failure(
                description=str(full),
                metadata={
                    "path": MetadataValue.path(str(full.path)),
                    "free_bytes": full.free_bytes,
                    "needed_bytes": full.needed_bytes,
                    **plan.metadata(),
                },
            ) from error
        except (ImdbBlockingError, CrawlStopped) as stopped:
            if isinstance(stopped, ImdbBlockingError):
                _pause_live(context, imdb, layout, str(stopped).split(":")[0])
            result = getattr(stopped, "result", None)
            metadata = _crawl_metadata(result, context.partition_key, archive_dir) if result else {}
            exit_orphaned_step(watch, str(stopped), context.log.error)
            raise Failure(description=str(stopped), metadata=tabulate({**metadata, **plan.metadata()})) from stopped
        if result.repaired_tail_bytes:
            context.log.warning(
                f"cut {result.repaired_tail_bytes:,} bytes off the end of {archive_dir}: a record an earlier run "
                "did not finish writing (killed, or the disk was full); its id was fetched again"
            )
        checked = one_status_per_id(read_outcomes(archive_dir), kind)
        return MaterializeResult(
            metadata=tabulate(
                {**_crawl_metadata(result, context.partition_key, archive_dir), **plan.metadata(), **gallery}
            ),
            check_results=[check_result(checked)],
        )

    @asset(
        name=records_name,
        partitions_def=partitions,
        # Titles merge OMDb's answers (assets/omdb.py, which depends on title_pages) when there are any.
        deps=[pages_asset, AssetKey("omdb_titles")] if kind == "title" else [pages_asset],
        group_name=CRAWL_GROUP,
        kinds={"python", "parquet"},
        description=f"Typed {kind} records parsed from the archived pages of one id range (Parquet).",
        check_specs=[
            AssetCheckSpec(
                "unique_ids", asset=records_name, description="No id appears twice in the partition's records."
            )
        ],
    )
    def records_asset(
        context: AssetExecutionContext, config: RecordsConfig, data_dir: DataDirResource
    ) -> MaterializeResult:
        from ...imdb.record_store import records_table, unique_ids, write_records
        from ...sources.field_order import FieldOrderError, field_order
        from ...sources.partition_records import build_records

        started = time.perf_counter()
        layout = data_dir.layout
        try:
            order = field_order(config.field_order)
        except FieldOrderError as error:
            raise Failure(description=str(error)) from error
        parsed = build_records(
            layout.pages_dir(kind, context.partition_key),
            kind,
            layout.index_dir,
            log=context.log.info,
            omdb_file=layout.omdb(context.partition_key).records if kind == "title" else None,
            field_order=order,
        )
        for warning in parsed.warnings:
            context.log.warning(warning)
        out = layout.records_file(kind, context.partition_key)
        write_records(parsed.records, kind, out)
        elapsed = time.perf_counter() - started
        preview = records_table(parsed.records[:10], kind).to_pandas()
        if kind == "title":
            preview = preview[["id", "title", "year", "title_type", "genres", "poster_url", "era"]]
        return MaterializeResult(
            metadata=tabulate(
                {
                    "records": len(parsed.records),
                    "parse_errors": len(parsed.errors),
                    "fields_filled_from_index": parsed.filled_from_index,
                    **({"fields_by_source": parsed.fields_by_source} if parsed.fields_by_source else {}),
                    # A torn archive tail (a write cut short): skipped, never parsed as a page.
                    "torn_tail_bytes": parsed.torn_tail_bytes,
                    "errors": preview_table(pd.DataFrame(parsed.errors, columns=["id", "url", "error"])),
                    "elapsed_s": round(elapsed, 2),
                    "pages_per_s": round(len(parsed.records) / elapsed, 1) if elapsed else 0.0,
                    "path": MetadataValue.path(str(out)),
                    "preview": preview_table(preview),
                }
            ),
            check_results=[check_result(unique_ids(record.id for record in parsed.records))],
        )

    return [pages_asset, records_asset]


title_assets = build_crawl_assets("title", TITLE_PARTITIONS)
person_assets = build_crawl_assets("person", PERSON_PARTITIONS)
crawl_assets = [*title_assets, *person_assets]
