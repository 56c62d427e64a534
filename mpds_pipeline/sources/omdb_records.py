"""A partition's OMDb records (``omdb.parquet``), rebuilt from its answer log, no network.

One row per id OMDb knows, with its actor names joined to person ids through the IMDb
datasets index when it exists (names without a match are counted; without the index
every name is unmatched, since a cast needs ids). ``title_records`` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path
from ..base.folders import OmdbFolder
from .omdb_answers import join_actor_names, parse_answer, read_answers

OMDB_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("title", pa.string()),
        ("original_title", pa.string()),
        ("title_type", pa.string()),
        ("year", pa.int32()),
        ("genres", pa.list_(pa.string())),
        ("actors", pa.map_(pa.string(), pa.string())),  # matched names -> person URL
        ("actor_names", pa.list_(pa.string())),  # as OMDb gave them
        ("unmatched_actors", pa.int32()),
        ("poster_url", pa.string()),
        ("synopsis", pa.string()),
        ("certificate", pa.string()),
        ("is_adult", pa.bool_()),
        ("request_url", pa.string()),  # redacted
        ("retrieved_at", pa.string()),
    ]
)


@dataclass
class OmdbRecords:
    table: pa.Table
    counts: dict[str, int]

    def poster_hosts(self) -> set[str]:
        """The hosts of OMDb's poster URLs (the poster download must allow each)."""
        from urllib.parse import urlsplit

        urls = [u for u in self.table.column("poster_url").to_pylist() if u]
        return {(urlsplit(u).hostname or "").lower() for u in urls}


def build_omdb_records(folder: OmdbFolder, index_dir: Path | None = None) -> OmdbRecords:
    """The partition's OMDb records from its answer log (no network): one row per id
    OMDb knows, actor names joined to ids through the index's principals when it exists."""
    from ..imdb.dataset_index import has_index, index_title_cast

    answered, unreadable = read_answers(folder.answers)
    parsed = []
    for line in answered.values():
        fields = parse_answer(line.answer or {}) if line.status == "ok" else None
        if fields is not None and fields["id"] == line.id:
            parsed.append((line, fields))
    cast = {}
    if index_dir is not None and has_index(index_dir, "principals") and parsed:
        cast = index_title_cast(index_dir, [fields["id"] for _, fields in parsed])
    rows = []
    names_total = names_unmatched = na_posters = 0
    for line, fields in sorted(parsed, key=lambda item: item[1]["id"]):
        actors, unmatched = join_actor_names(fields["actor_names"], cast.get(fields["id"], []))
        names_total += len(fields["actor_names"])
        names_unmatched += len(unmatched)
        na_posters += fields["poster_url"] is None
        rows.append(
            {
                **fields,
                "actors": list(actors.items()),
                "unmatched_actors": len(unmatched),
                "request_url": line.url,
                "retrieved_at": line.retrieved_at,
            }
        )
    counts = {
        "answers": len(answered),
        "titles": len(rows),
        "not_found": sum(1 for line in answered.values() if line.status == "not_found"),
        "no_poster": na_posters,
        "actor_names": names_total,
        "actor_names_unmatched": names_unmatched,
        "unreadable_answer_lines": unreadable,
    }
    return OmdbRecords(pa.Table.from_pylist(rows, schema=OMDB_SCHEMA), counts)


def write_omdb_records(records: OmdbRecords, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(records.table, tmp)


def read_omdb_fields(path: Path | None) -> dict[int, dict[str, Any]]:
    """id -> title record fields from an ``omdb.parquet`` (empty when there is none)."""
    if path is None or not Path(path).is_file():
        return {}
    fields: dict[int, dict[str, Any]] = {}
    for row in pq.read_table(path, schema=OMDB_SCHEMA).to_pylist():
        row["actors"] = dict(row["actors"] or [])
        row["genres"] = list(row["genres"] or [])
        fields[row["id"]] = row
    return fields
