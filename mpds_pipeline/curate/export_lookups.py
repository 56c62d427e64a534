"""Per-id look-ups the export holds while it streams the movies, kept compact.

Custom poster texts and extra poster columns stay columnar Arrow tables looked up by id,
and the ids seen so far are bit sets: at hundreds of thousands of movies, a Python
object per row would dominate the export's memory (docs/scale-and-failures.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


class TextLookup:
    """Custom poster texts by id, from a mapping or an Arrow table (id, text): the table
    stays columnar (a few bytes per character, not a Python string per row)."""

    def __init__(self, texts: Mapping[int, str] | pa.Table | None):
        self._mapping: Mapping[int, str] | None = None
        self._table: _ArrowRows | None = None
        if isinstance(texts, pa.Table):
            self._table = _ArrowRows(texts.select(["id", "text"]), keep="last")  # as dict(zip(ids, texts))
        else:
            self._mapping = texts or {}

    def get_many(self, ids: list[int]) -> list[str | None]:
        if self._table is not None:
            found = self._table.take(ids).column("text").to_pylist()
        else:
            found = [self._mapping.get(i) for i in ids]
        return [text if text else None for text in found]


class ExtraColumns:
    """Extra posters.parquet / metadata.jsonl columns by id (the first row of an id wins);
    each column's type is decided once, over the whole column."""

    def __init__(self, extra: pd.DataFrame | pa.Table | None):
        self._rows: _ArrowRows | None = None
        self.fields: list[pa.Field] = []
        if extra is None or (extra.num_rows if isinstance(extra, pa.Table) else len(extra)) == 0:
            return
        if isinstance(extra, pd.DataFrame):
            extra = pa.table(
                {c: pa.array([None if _is_missing(v) else v for v in extra[c].tolist()]) for c in extra.columns}
            )
        names = [c for c in extra.column_names if c not in ("id", "text", "file_name")]
        table = extra.select(["id", *names])
        self._rows = _ArrowRows(table.set_column(0, "id", pc.cast(table.column("id"), pa.int64())), keep="first")
        self.fields = [table.schema.field(name) for name in names]

    def take(self, ids: list[int]) -> dict[str, list]:
        if self._rows is None:
            return {}
        rows = self._rows.take(ids)
        return {f.name: rows.column(f.name).to_pylist() for f in self.fields}


class _ArrowRows:
    """Rows of an Arrow table looked up by their int64 ``id`` (sorted index, no Python
    object per row); an id missing from the table gives a row of nulls."""

    def __init__(self, table: pa.Table, keep: str):
        ids = table.column("id").to_numpy(zero_copy_only=False)
        valid = ~pd.isna(ids)
        ids = ids.astype("int64", copy=False) if valid.all() else ids[valid].astype("int64")
        rows = np.flatnonzero(valid)
        if keep == "last":
            self.ids, first = np.unique(ids[::-1], return_index=True)
            self.rows = rows[len(ids) - 1 - first]
        else:
            self.ids, first = np.unique(ids, return_index=True)
            self.rows = rows[first]
        self.table = table
        self._batches = table.to_batches()
        self._starts = np.cumsum([0, *(len(b) for b in self._batches)])

    def take(self, ids: list[int]) -> pa.Table:
        wanted = np.asarray(ids, dtype="int64")
        if not len(self.ids):
            return self.table.take(pa.nulls(len(wanted), pa.int64()))
        at = np.minimum(np.searchsorted(self.ids, wanted), len(self.ids) - 1)
        found = self.ids[at] == wanted
        rows = np.where(found, self.rows[at], 0)
        # Gathered chunk by chunk: a take over a table of many chunks (one per row group
        # read) concatenates each column first, a copy of the whole table per call.
        chunk = np.searchsorted(self._starts, rows, side="right") - 1
        pieces, order = [], []
        for number in np.unique(chunk[found]):
            picked = np.flatnonzero(found & (chunk == number))
            batch = self._batches[number].take(pa.array(rows[picked] - self._starts[number]))
            pieces.append(pa.Table.from_batches([batch], schema=self.table.schema))
            order.append(picked)
        gathered = pa.concat_tables(pieces) if pieces else self.table.schema.empty_table()
        where = np.full(len(wanted), 0, dtype="int64")
        if order:
            where[np.concatenate(order)] = np.arange(gathered.num_rows)
        return gathered.take(pa.array(where, pa.int64(), mask=~found))


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array cell: a value
        return False


class IdSet:
    """A set of non-negative ints as one bit per int: 1.25 MB per 10M ids, no object per id."""

    def __init__(self):
        self._bits = bytearray()

    def add(self, item: int) -> None:
        byte = item >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        self._bits[byte] |= 1 << (item & 7)

    def __contains__(self, item: int) -> bool:
        byte = item >> 3
        return 0 <= byte < len(self._bits) and bool(self._bits[byte] & (1 << (item & 7)))
