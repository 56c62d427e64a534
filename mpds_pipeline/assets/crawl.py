"""Crawl assets: ``title_pages`` -> ``title_records`` and ``person_pages`` -> ``person_records``.

Each is partitioned by id range. ``*_pages`` fetches the range politely into a WARC
archive with one status per attempted id; ``*_records`` parses that archive (no network).
"""

import time

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
    asset_check,
)

from .. import settings
from ..imdb.partitions import id_ranges, parse_partition_key
from ..resources import DataDirResource, ImdbClientResource
from .metadata import counts_table, markdown_table

CRAWL_GROUP = "crawl"


def title_partitions() -> StaticPartitionsDefinition:
    first, last = settings.title_id_range()
    return StaticPartitionsDefinition([r.key for r in id_ranges("title", first, last, settings.partition_size())])


def person_partitions() -> StaticPartitionsDefinition:
    first, last = settings.person_id_range()
    return StaticPartitionsDefinition([r.key for r in id_ranges("person", first, last, settings.partition_size())])


TITLE_PARTITIONS = title_partitions()
PERSON_PARTITIONS = person_partitions()


def _crawl_metadata(result, partition_key: str, archive_dir) -> dict:
    counts = result.status_counts()
    return {
        "partition": partition_key,
        "attempted": sum(counts.values()),
        **{f"status_{status}": counts.get(status, 0) for status in ("ok", "missing", "redirect", "blocked", "failed")},
        "unattempted": len(result.unattempted_ids),
        "requests_made": result.requests_made,
        "elapsed_s": round(result.elapsed_s, 2),
        "pages_per_s": round(result.pages_per_s, 2),
        "archive": MetadataValue.path(str(archive_dir)),
    }


def build_crawl_assets(kind: str, partitions: StaticPartitionsDefinition):
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
    def pages_asset(context: AssetExecutionContext, imdb: ImdbClientResource, data_dir: DataDirResource) -> MaterializeResult:
        from ..imdb.crawl import ImdbBlockingError, crawl_partition

        id_range = parse_partition_key(context.partition_key)
        archive_dir = data_dir.layout.pages_dir(kind, context.partition_key)
        try:
            result = crawl_partition(
                kind,
                id_range.ids(),
                imdb.client_settings(),
                archive_dir,
                archive_mode=imdb.archive_mode,
                max_consecutive_blocks=imdb.max_consecutive_blocks,
            )
        except ImdbBlockingError as blocked:
            result = getattr(blocked, "result", None)
            metadata = _crawl_metadata(result, context.partition_key, archive_dir) if result else {}
            raise Failure(description=str(blocked), metadata=metadata) from blocked
        return MaterializeResult(metadata=_crawl_metadata(result, context.partition_key, archive_dir))

    @asset(
        name=records_name,
        partitions_def=partitions,
        deps=[pages_asset],
        group_name=CRAWL_GROUP,
        kinds={"python", "parquet"},
        description=f"Typed {kind} records parsed from the archived pages of one id range (Parquet).",
    )
    def records_asset(context: AssetExecutionContext, data_dir: DataDirResource) -> MaterializeResult:
        from ..imdb.record_store import parse_archive, records_table, write_records

        started = time.perf_counter()
        layout = data_dir.layout
        parsed = parse_archive(layout.pages_dir(kind, context.partition_key), kind)
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
                "errors": markdown_table(__import__("pandas").DataFrame(parsed.errors)),
                "elapsed_s": round(elapsed, 2),
                "pages_per_s": round(len(parsed.records) / elapsed, 1) if elapsed else 0.0,
                "path": MetadataValue.path(str(out)),
                "preview": markdown_table(preview),
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
            outcomes = read_outcomes(archive_dir)
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
