"""Curated tables on disk: Parquet with list and map columns, written atomically.

Movies carry an ordered ``actors`` mapping (name -> person URL); Arrow maps keep that
order, so it is stored as a map and handed back to callers as a dict.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path
from .filters import as_actor_dict

MAP_COLUMNS = ("actors", "field_sources")  # field_sources: which source gave each field


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` atomically; dict columns become Arrow maps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    maps = {c: frame[c].map(lambda v: list(as_actor_dict(v).items())) for c in MAP_COLUMNS if c in frame.columns}
    table = pa.Table.from_pandas(frame.drop(columns=list(maps)), preserve_index=False)
    for column, values in maps.items():
        position = list(frame.columns).index(column)
        array = pa.array(values.tolist(), type=pa.map_(pa.string(), pa.string()))
        table = table.add_column(position, pa.field(column, array.type), array)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_table(path: Path, missing_ok: bool = False) -> pd.DataFrame:
    """Read a table written by ``write_table``; maps come back as ordered dicts."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return pd.DataFrame()
        raise FileNotFoundError(f"{path} does not exist: materialise the asset that writes it first")
    frame = pq.read_table(path).to_pandas()
    for column in MAP_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].map(as_actor_dict)
    return frame


class TableWriter:
    """One Parquet file written a table (a partition, a batch) at a time, so a large table
    never has to be in memory whole; it appears at ``path`` when the block ends without
    an error, with ``schema`` (each table is cast to it), empty if nothing was written."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows = Path(path), schema, 0
        self._stack = ExitStack()
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> TableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._writer = self._stack.enter_context(pq.ParquetWriter(tmp, self.schema))
        return self

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.select(self.schema.names).cast(self.schema))
            self.rows += table.num_rows

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)
