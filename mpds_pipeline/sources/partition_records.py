"""A partition's records: its archive's pages parsed, then each title merged field by
field with the IMDb datasets index and OMDb's answers, in the configured order."""

from __future__ import annotations

from pathlib import Path

from ..base.progress import ProgressLog
from ..imdb.record_store import ParsedPartition, parse_archive
from .field_order import INDEX, index_fields, merge_title_records
from .omdb_records import read_omdb_fields


def build_records(
    archive_dir: Path,
    kind: str,
    index_dir: Path | None = None,
    log: ProgressLog | None = None,
    *,
    omdb_file: Path | None = None,
    field_order: dict | None = None,
) -> ParsedPartition:
    """Parse a partition's archive; titles are then merged, field by field in
    ``field_order`` (default: field_order.py's), with the IMDb datasets index and
    the partition's OMDb records (``omdb_file``) where they exist. ``log`` gets progress
    lines (pages parsed, rate, errors)."""
    parsed = parse_archive(archive_dir, kind, log)
    if kind == "title":
        omdb = read_omdb_fields(omdb_file)
        index = index_fields(index_dir, [r.id for r in parsed.records] + list(omdb)) if index_dir else {}
        parsed.records, counts = merge_title_records(parsed.records, omdb, index, field_order)
        parsed.filled_from_index = sum(INDEX in r.field_sources.values() for r in parsed.records)
        parsed.fields_by_source = counts.table()
    return parsed
