"""Crawl assets: ``title_pages`` -> ``title_records`` and ``person_pages`` -> ``person_records``.

Each is partitioned by id range. ``*_pages`` fetches the range politely into a WARC
archive with one status per attempted id; ``*_records`` parses that archive (no network).
"""

import time

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    DynamicPartitionsDefinition,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from ..imdb.partitions import parse_partition_key
from ..resources import DataDirResource, ImdbClientResource
from .metadata import counts_table, preview_table, tabulate
from .partitions import PERSON_PARTITIONS, TITLE_PARTITIONS

CRAWL_GROUP = "crawl"


def _crawl_metadata(result, partition_key: str, archive_dir) -> dict:
    counts = result.status_counts()
    metadata = {
        "partition": partition_key,
        "attempted": sum(counts.values()),
        **{f"status_{status}": counts.get(status, 0) for status in ("ok", "missing", "redirect", "blocked", "failed")},
        "unattempted": len(result.unattempted_ids),
        "requests_made": result.requests_made,
        # MPDS_RATE, or lower when robots.txt asks a Crawl-delay.
        "rate_per_second": round(result.rate_per_second, 3),
        "elapsed_s": round(result.elapsed_s, 2),
        "pages_per_s": round(result.pages_per_s, 2),
        # The index's goal: close to one request per kept page (robots.txt and retries count).
        "requests_per_ok_page": round(result.requests_made / counts["ok"], 3) if counts.get("ok") else None,
        "archive": MetadataValue.path(str(archive_dir)),
    }
    return {key: value for key, value in metadata.items() if value is not None}


class CrawlConfig(Config):
    recrawl_incomplete_after_days: float | None = Field(
        None, description="refetch archived titles whose record lacks a poster or plot and is older than this"
    )
    photo_galleries: bool = Field(
        True, description="person pages: fetch /name/nm…/mediaindex once for actors whose page shows too few photos of them alone"
    )
    min_solo_photos: int = Field(3, description="person pages: fewer photos of the actor alone than this fetch the gallery")


def build_crawl_assets(kind: str, partitions: DynamicPartitionsDefinition):
    """The pages asset, the records asset and their checks for one page kind."""
    pages_name, records_name = f"{kind}_pages", f"{kind}_records"

    @asset(
        name=pages_name,
        partitions_def=partitions,
        group_name=CRAWL_GROUP,
        kinds={"python", "warc"},
        pool="imdb_requests",
        description=f"IMDb {kind} pages of one id range, fetched politely into a gzip WARC archive; "
        "one status per attempted id (ok, missing, redirect, blocked, failed).",
    )
    def pages_asset(context: AssetExecutionContext, config: CrawlConfig, imdb: ImdbClientResource, data_dir: DataDirResource) -> MaterializeResult:
        from ..imdb.archive import PartitionBusy
        from ..imdb.crawl import CrawlStopped, ImdbBlockingError, crawl_partition
        from ..imdb.crawl_plan import plan_partition
        from ..parent_watch import parent_gone_check

        layout = data_dir.layout
        id_range = parse_partition_key(context.partition_key)
        archive_dir = layout.pages_dir(kind, context.partition_key)
        plan = plan_partition(
            id_range,
            layout.index_dir if imdb.use_index else None,
            records_file=layout.records_file(kind, context.partition_key),
            outcomes_dir=archive_dir,
            recrawl_incomplete_after_days=config.recrawl_incomplete_after_days,
        )
        try:
            result = crawl_partition(
                kind,
                plan.ids,
                imdb.client_settings(),
                archive_dir,
                archive_mode=imdb.archive_mode,
                max_consecutive_blocks=imdb.max_consecutive_blocks,
                refetch=plan.refetch,
                should_stop=parent_gone_check(),
                log=context.log.info,
                label=f"{pages_name} {context.partition_key}",
                run_id=context.run.run_id,
            )
            gallery = {}
            if kind == "person" and config.photo_galleries:
                from ..imdb.galleries import crawl_galleries

                gallery = crawl_galleries(
                    archive_dir, imdb.client_settings(), min_solo_photos=config.min_solo_photos,
                    archive_mode=imdb.archive_mode, max_consecutive_blocks=imdb.max_consecutive_blocks,
                    should_stop=parent_gone_check(), log=context.log.info,
                    label=f"person galleries {context.partition_key}", run_id=context.run.run_id,
                ).metadata()
        except PartitionBusy as busy:
            raise Failure(description=str(busy)) from busy
        except (ImdbBlockingError, CrawlStopped) as stopped:
            result = getattr(stopped, "result", None)
            metadata = _crawl_metadata(result, context.partition_key, archive_dir) if result else {}
            raise Failure(description=str(stopped), metadata=tabulate({**metadata, **plan.metadata()})) from stopped
        return MaterializeResult(metadata=tabulate({**_crawl_metadata(result, context.partition_key, archive_dir), **plan.metadata(), **gallery}))

    @asset(
        name=records_name,
        partitions_def=partitions,
        deps=[pages_asset],
        group_name=CRAWL_GROUP,
        kinds={"python", "parquet"},
        description=f"Typed {kind} records parsed from the archived pages of one id range (Parquet).",
    )
    def records_asset(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
        from ..imdb.record_store import build_records, records_table, write_records

        started = time.perf_counter()
        layout = data_dir.layout
        parsed = build_records(layout.pages_dir(kind, context.partition_key), kind, layout.index_dir, log=context.log.info)
        out = layout.records_file(kind, context.partition_key)
        write_records(parsed.records, kind, out)
        elapsed = time.perf_counter() - started
        preview = records_table(parsed.records[:10], kind).to_pandas()
        if kind == "title":
            preview = preview[["id", "title", "year", "title_type", "genres", "poster_url", "era"]]
        return MaterializeResult(
            metadata={
                "records": len(parsed.records),
                "parse_errors": len(parsed.errors),
                "fields_filled_from_index": parsed.filled_from_index,
                "errors": preview_table(pd.DataFrame(parsed.errors, columns=["id", "url", "error"])),
                "elapsed_s": round(elapsed, 2),
                "pages_per_s": round(len(parsed.records) / elapsed, 1) if elapsed else 0.0,
                "path": MetadataValue.path(str(out)),
                "preview": preview_table(preview),
            }
        )

    @asset_check(asset=records_asset, name="unique_ids", description="No id appears twice in the partition's records.")
    def unique_ids(context, data_dir: DataDirResource) -> AssetCheckResult:
        import pyarrow.parquet as pq

        from ..imdb.record_store import SCHEMAS

        passed_all, dupes = True, {}
        for key in _materialized_keys(data_dir.layout.records_dir(kind)):
            ids = pq.read_table(data_dir.layout.records_file(kind, key), columns=["id"], schema=SCHEMAS[kind]).column("id").to_pylist()
            repeated = len(ids) - len(set(ids))
            if repeated:
                passed_all, dupes[key] = False, repeated
        return AssetCheckResult(passed=passed_all, metadata={"partitions_with_duplicates": counts_table(dupes, "partition", "duplicates")})

    @asset_check(
        asset=pages_asset,
        name="one_status_per_id",
        description="Every attempted id has exactly one status; blocked ids are reported, not silently absent.",
    )
    def one_status_per_id(context, data_dir: DataDirResource) -> AssetCheckResult:
        from ..imdb.crawl import read_outcomes

        problems, blocked, attempted = {}, 0, 0
        for archive_dir in sorted(data_dir.layout.pages_dir(kind, "x").parent.glob("*")):
            outcomes = [o for o in read_outcomes(archive_dir) if o.kind == kind]  # galleries have their own
            ids = [o.id for o in outcomes]
            attempted += len(ids)
            blocked += sum(o.status == "blocked" for o in outcomes)
            repeated = len(ids) - len(set(ids))
            invalid = sum(o.status not in ("ok", "missing", "redirect", "blocked", "failed") for o in outcomes)
            if repeated or invalid:
                problems[archive_dir.name] = f"{repeated} repeated, {invalid} invalid"
        return AssetCheckResult(
            passed=not problems and blocked == 0,
            severity=AssetCheckSeverity.ERROR if problems else AssetCheckSeverity.WARN,
            metadata={"attempted": attempted, "blocked": blocked, "problems": counts_table(problems, "partition", "problem")},
            description="IMDb blocked some requests: rerun those partitions later" if blocked else None,
        )

    return [pages_asset, records_asset], [unique_ids, one_status_per_id]


def _materialized_keys(records_dir) -> list[str]:
    return sorted(p.stem for p in records_dir.glob("*.parquet")) if records_dir.exists() else []


title_assets, title_checks = build_crawl_assets("title", TITLE_PARTITIONS)
person_assets, person_checks = build_crawl_assets("person", PERSON_PARTITIONS)
crawl_assets = [*title_assets, *person_assets]
crawl_checks = [*title_checks, *person_checks]
