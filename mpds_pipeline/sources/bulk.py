"""Bulk mode: Common Crawl's columnar index read with DuckDB, for many partitions at once.

One query writes each partition's capture list ahead of time, so the crawl fetches those
captures without asking the CDX server partition by partition. The query and how to run
it: docs/sources-archives.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path
from ..base.folders import PagesFolder
from .captures import ARCHIVED_HOST, Capture

_PATH_RE = {"title": r"^/title/tt([0-9]{7,9})/?(combined/?)?$", "person": r"^/name/nm([0-9]{7,9})/?$"}

# One row per main-page HTML 200 capture of an id in the ranges asked.
CAPTURES_SQL = """
SELECT CAST(regexp_extract(url_path, $path_re, 1) AS BIGINT) AS id,
       url, strftime(fetch_time, '%Y%m%d%H%M%S') AS timestamp, fetch_status AS status,
       content_mime_detected AS mime, content_digest AS digest,
       warc_filename AS filename, warc_record_offset AS "offset", warc_record_length AS length, crawl
FROM read_parquet($files, hive_partitioning = true, union_by_name = true)
WHERE url_host_name = $host AND subset = 'warc' AND fetch_status = 200
  AND regexp_matches(url_path, $path_re)
  AND CAST(regexp_extract(url_path, $path_re, 1) AS BIGINT) BETWEEN $lo AND $hi
"""

_CAPTURE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("url", pa.string()),
        ("timestamp", pa.string()),
        ("status", pa.int32()),
        ("mime", pa.string()),
        ("digest", pa.string()),
        ("filename", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int64()),
        ("crawl", pa.string()),
    ]
)


def query_captures(
    files: str | Sequence[str], kind: str, lo: int, hi: int, crawls: Iterable[str] = (), *, connection=None
) -> pa.Table:
    """Every main-page HTML 200 capture of ``kind`` ids ``lo..hi`` in the columnar index
    ``files`` (a path, a glob, or an ``s3://``/``https://`` URL that DuckDB's httpfs reads)."""
    import duckdb

    con = connection or duckdb.connect()
    if any(str(f).startswith(("s3://", "http://", "https://")) for f in _as_list(files)):
        con.execute("INSTALL httpfs; LOAD httpfs;")
    sql = CAPTURES_SQL
    params = {"path_re": _PATH_RE[kind], "files": _as_list(files), "host": ARCHIVED_HOST, "lo": lo, "hi": hi}
    crawl_list = list(crawls)
    if crawl_list:
        sql += " AND crawl IN (SELECT unnest($crawls))"
        params["crawls"] = crawl_list
    return con.sql(sql + " ORDER BY id, timestamp DESC", params=params).to_arrow_table().cast(_CAPTURE_SCHEMA)


def _as_list(files: str | Sequence[str]) -> list[str]:
    return [str(files)] if isinstance(files, (str, Path)) else [str(f) for f in files]


def bulk_capture_lists(
    files: str | Sequence[str],
    kind: str,
    partitions: dict[str, tuple[int, int]],
    pages_dir_of,
    crawls: Iterable[str] = (),
) -> dict[str, int]:
    """One query for all ``partitions`` (key -> id range); writes each partition's
    capture list to ``PagesFolder(pages_dir_of(key)).captures``. Returns captures per key."""
    if not partitions:
        return {}
    lo = min(r[0] for r in partitions.values())
    hi = max(r[1] for r in partitions.values())
    table = query_captures(files, kind, lo, hi, crawls)
    ids = table.column("id").to_pylist()
    written: dict[str, int] = {}
    for key, (first, last) in partitions.items():
        rows = [n for n, item_id in enumerate(ids) if first <= item_id <= last]
        part = table.take(pa.array(rows, pa.int64())) if rows else _CAPTURE_SCHEMA.empty_table()
        write_capture_list(PagesFolder(Path(pages_dir_of(key))).captures, part)
        written[key] = part.num_rows
    return written


def write_capture_list(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table.cast(_CAPTURE_SCHEMA), tmp)


def read_capture_list(path: Path) -> dict[int, list[Capture]]:
    """id -> its captures, from a capture list written by ``bulk_capture_lists``."""
    by_id: dict[int, list[Capture]] = {}
    for row in pq.read_table(path, schema=_CAPTURE_SCHEMA).to_pylist():
        capture = Capture(
            source="common_crawl",
            kind=_kind_of(row["url"]),
            id=row["id"],
            url=row["url"],
            timestamp=row["timestamp"],
            status=row["status"],
            mime=row["mime"] or "",
            digest=(row["digest"] or "").upper(),
            length=row["length"],
            offset=row["offset"],
            filename=row["filename"],
            crawl=row["crawl"],
        )
        by_id.setdefault(capture.id, []).append(capture)
    return by_id


def _kind_of(url: str) -> str:
    return "person" if "/name/nm" in url else "title"
