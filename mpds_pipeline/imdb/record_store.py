"""Records <-> Parquet, and re-parsing a partition's archive into records.

Parsing reads only the archive, never the network: records can be rebuilt after a
parser fix without refetching a page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path
from ..base.progress import Progress, ProgressLog
from ..base.rules import RuleResult, id_preview
from .ids import GALLERY_KIND
from .image_hosts import modernise_image_urls
from .person_photos import add_gallery_photos
from .records import ParseError, PersonRecord, TitleRecord

TITLE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("title", pa.string()),
        ("original_title", pa.string()),
        ("title_type", pa.string()),
        ("year", pa.int32()),
        ("genres", pa.list_(pa.string())),
        ("actors", pa.map_(pa.string(), pa.string())),
        ("poster_url", pa.string()),
        ("synopsis", pa.string()),
        ("certificate", pa.string()),
        ("is_adult", pa.bool_()),
        ("era", pa.string()),
        # Came later: files written before it read back with an empty map.
        ("field_sources", pa.map_(pa.string(), pa.string())),
    ]
)
PHOTO_TYPE = pa.struct(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("tagged_ids", pa.list_(pa.int64())),
        ("source", pa.string()),
    ]
)
# ``photos`` came later: files written before it read back with an empty list.
PERSON_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("image_url", pa.string()),
        ("professions", pa.list_(pa.string())),
        ("is_actor", pa.bool_()),
        ("era", pa.string()),
        ("photos", pa.list_(PHOTO_TYPE)),
    ]
)
SCHEMAS = {"title": TITLE_SCHEMA, "person": PERSON_SCHEMA}


@dataclass
class ParsedPartition:
    records: list = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"id", "url", "error"}
    filled_from_index: int = 0  # title records that took at least one field from the index
    fields_by_source: list[dict] = field(default_factory=list)  # {"field", "source", "records"} (titles)
    torn_tail_bytes: int = 0  # bytes at the archive's end that are no complete record: skipped
    warnings: list[str] = field(default_factory=list)  # for the run log, at WARNING


def parse_archive(archive_dir: Path, kind: str, log: ProgressLog | None = None) -> ParsedPartition:
    """Parse every 'ok' response of a partition's archive; one record per id (the last)."""
    from .archive import PageArchive
    from .parsing import parse_page

    by_id: dict[int, object] = {}
    errors: dict[int, dict] = {}
    galleries: dict[int, bytes] = {}  # person id -> its gallery page (kind "person")
    progress = Progress(f"{kind}_records {Path(archive_dir).name}", None, log, unit="pages")
    archive = PageArchive(archive_dir, repair=False)
    for response in archive.iter_responses():
        if kind == "person" and response.kind == GALLERY_KIND and response.status == "ok":
            galleries[response.id] = response.body
            continue
        if response.status != "ok" or response.kind != kind:
            continue
        parsed = parse_page(response.body, kind=kind, path=response.url)
        progress.update(status="error" if isinstance(parsed, ParseError) else "parsed")
        if isinstance(parsed, ParseError):
            errors[response.id] = {"id": response.id, "url": response.url, "error": parsed.error}
            by_id.pop(response.id, None)
            continue
        # The page's own id wins over the requested one only if they agree; a mismatch
        # would be an undetected redirect and would duplicate another record.
        if parsed.id != response.id:
            errors[response.id] = {
                "id": response.id,
                "url": response.url,
                "error": f"page is for id {parsed.id}, not the requested {response.id}",
            }
            continue
        modernise_image_urls(parsed)  # archived pages link images on hosts IMDb has since left
        by_id[parsed.id] = parsed
        errors.pop(response.id, None)
    for person_id, page in galleries.items():
        if person_id in by_id:
            add_gallery_photos(by_id[person_id], page)
    progress.close()
    parsed = ParsedPartition(records=[by_id[i] for i in sorted(by_id)], errors=list(errors.values()))
    if archive.torn_tail_bytes:
        parsed.torn_tail_bytes = archive.torn_tail_bytes
        parsed.warnings.append(torn_tail_warning(archive.path, archive.torn_tail_bytes, kind))
    return parsed


def torn_tail_warning(path: Path, torn_bytes: int, kind: str) -> str:
    return (
        f"{path} ends in {torn_bytes:,} bytes that are no complete record (a write cut short by a kill or a "
        f"full disk, or one still in progress): skipped, not parsed. The next {kind}_pages run of this "
        "partition cuts them off and fetches the ids they held again; then rebuild these records."
    )


def records_table(records: list, kind: str) -> pa.Table:
    schema = SCHEMAS[kind]
    rows = [asdict(record) for record in records]
    if kind == "title":
        for row in rows:
            row["actors"] = list(row["actors"].items())
            row["field_sources"] = list(row["field_sources"].items())
    return pa.Table.from_pylist(rows, schema=schema)


def write_records(records: list, kind: str, path: Path) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(records_table(records, kind), tmp)


def unique_ids(ids: Iterable[int]) -> RuleResult:
    """The records' rule for a partition: no id appears twice."""
    per_id = Counter(ids)
    repeated = sorted(i for i, n in per_id.items() if n > 1)
    return RuleResult(
        "unique_ids",
        not repeated,
        "no id appears twice in the partition's records",
        {
            "records": sum(per_id.values()),
            "duplicated_ids": len(repeated),
            "duplicates": id_preview(repeated),
        },
    )


def read_records(records_dir: Path, kind: str) -> pd.DataFrame:
    """All partitions' records of one kind as one DataFrame (empty with the right columns)."""
    files = sorted(Path(records_dir).glob("*.parquet"))
    schema = SCHEMAS[kind]
    if not files:
        return schema.empty_table().to_pandas()
    table = pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
    frame = table.to_pandas()
    if kind == "title":
        # Arrow maps come back as lists of pairs; give callers the ordered dict.
        frame["actors"] = frame["actors"].map(lambda pairs: dict(pairs) if pairs is not None else {})
        frame["field_sources"] = frame["field_sources"].map(lambda pairs: dict(pairs) if pairs is not None else {})
    if kind == "person":
        frame["photos"] = frame["photos"].map(lambda photos: list(photos) if photos is not None else [])
    return frame.drop_duplicates("id", keep="last").reset_index(drop=True)


@dataclass
class LatestPartitions:
    """Every partition's records of one kind, one Arrow table per partition file, each id
    once: where an id is in several files the last file's row wins, as in ``read_records``.
    Only the id columns are read up front; ``rows`` is how many rows the tables hold."""

    files: list[Path]
    keep: list  # per file, a boolean mask of its rows to keep
    schema: pa.Schema
    rows: int

    def __iter__(self):
        for path, keep in zip(self.files, self.keep):
            table = pq.read_table(path, schema=self.schema)
            yield table if bool(keep.all()) else table.filter(pa.array(keep))


def latest_partitions(records_dir: Path, kind: str) -> LatestPartitions:
    """The records of ``records_dir`` partition by partition (see LatestPartitions)."""
    import numpy as np

    files = sorted(Path(records_dir).glob("*.parquet"))
    schema = SCHEMAS[kind]
    ids = [pq.read_table(f, columns=["id"]).column("id").to_numpy() for f in files]
    every = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    # The last occurrence of each id: the first in the reversed order.
    _, first_from_end = np.unique(every[::-1], return_index=True)
    wanted = np.zeros(len(every), dtype=bool)
    wanted[len(every) - 1 - first_from_end] = True
    bounds = np.cumsum([0, *(len(i) for i in ids)])
    keep = [wanted[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
    return LatestPartitions(files, keep, schema, int(wanted.sum()))


__all__ = [
    "ParsedPartition",
    "parse_archive",
    "read_records",
    "records_table",
    "write_records",
    "PersonRecord",
    "TitleRecord",
]
