"""The release's three tables in the paper's format, and the writers of their files.

The CSVs follow the paper's release format exactly (list and dict cells as JSON); the
Parquet files beside them carry the same columns with Arrow list and map types. Every
file is written atomically, batch by batch, and appears whole when the export ends.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_open, atomic_path

META_COLUMNS = ["id", "movie-url", "title", "genres", "actors", "poster-url", "synopsis"]
POSTERS_COLUMNS = ["id", "text"]
ACTORS_COLUMNS = ["id", "actors-url", "actors name", "image-url"]
META_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("movie-url", pa.string()),
        ("title", pa.string()),
        ("genres", pa.list_(pa.string())),
        ("actors", pa.map_(pa.string(), pa.string())),
        ("poster-url", pa.string()),
        ("synopsis", pa.string()),
    ]
)
POSTERS_SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string())])
ACTORS_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("actors-url", pa.string()),
        ("actors name", pa.string()),
        ("image-url", pa.string()),
    ]
)


class CsvOut:
    """A CSV written row batch by row batch; it appears whole when the export ends."""

    def __init__(self, stack: ExitStack, path: Path, columns: list[str]):
        handle = stack.enter_context(atomic_open(path, "w", newline="", encoding="utf-8"))
        self._writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        self._writer.writeheader()

    def write(self, rows: Iterable[dict]) -> None:
        self._writer.writerows(rows)


class ParquetOut:
    """A Parquet file of ``schema`` written batch by batch; it appears whole at the end."""

    def __init__(self, stack: ExitStack, path: Path, schema: pa.Schema):
        self.schema = schema
        tmp = stack.enter_context(atomic_path(path))
        self._writer = stack.enter_context(pq.ParquetWriter(tmp, schema))

    def write(self, columns: dict[str, list]) -> None:
        table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in self.schema}, schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)


def jsonify(row: dict) -> dict:
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in row.items()}


def write_csv(path: Path, columns: list[str], rows: Iterable[dict]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(path: Path, schema: pa.Schema, columns: dict[str, list]) -> None:
    table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
