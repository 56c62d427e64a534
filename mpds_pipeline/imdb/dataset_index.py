"""The IMDb dataset index: IMDb's non-commercial TSV files as typed Parquet, and its look-ups.

``build_index`` converts the TSVs block by block in bounded memory. With the index a
crawl asks only for ids that exist, skips adult titles before any request, fills facts a
page lacks and picks actors by profession. See docs/crawl.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..base.files import atomic_path, write_atomic
from ..base.folders import IndexFolder
from ..base.progress import Progress, ProgressLog

ACTOR_PROFESSIONS = ("actor", "actress")

TITLES_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("title_type", pa.string()),
        ("primary_title", pa.string()),
        ("original_title", pa.string()),
        ("is_adult", pa.bool_()),
        ("start_year", pa.int32()),
        ("end_year", pa.int32()),
        ("runtime_minutes", pa.int32()),
        ("genres", pa.list_(pa.string())),
    ]
)
NAMES_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("primary_name", pa.string()),
        ("birth_year", pa.int32()),
        ("death_year", pa.int32()),
        ("primary_professions", pa.list_(pa.string())),
        ("known_for", pa.list_(pa.int64())),
        ("is_actor", pa.bool_()),
    ]
)
PRINCIPALS_SCHEMA = pa.schema(
    [
        ("title_id", pa.int64()),
        ("ordering", pa.int32()),
        ("person_id", pa.int64()),
        ("category", pa.string()),
        ("job", pa.string()),
        ("characters", pa.list_(pa.string())),
    ]
)


# --- conversion of one block of TSV strings into typed columns -----------------------


def _ints(strings: pa.Array, type_: pa.DataType = pa.int64()) -> pa.Array:
    """Digits -> integers; anything else (null, junk from a malformed row) -> null."""
    digits = pc.match_substring_regex(strings, r"^[0-9]{1,18}$")
    return pc.cast(pc.if_else(digits, strings, pa.scalar(None, pa.string())), type_)


def _code_ids(strings: pa.Array) -> pa.Array:
    """'tt0133093' / 'nm0000206' -> 133093 / 206."""
    return _ints(pc.utf8_slice_codeunits(strings, 2))


def _split(strings: pa.Array, separator: str = ",") -> pa.ListArray:
    return pc.split_pattern(strings, separator)


def _split_code_ids(strings: pa.Array) -> pa.ListArray:
    """'tt0816692,tt1375666' -> [816692, 1375666]."""
    lists = _split(strings)
    return pa.ListArray.from_arrays(lists.offsets, _code_ids(lists.values), mask=pc.is_null(lists))


def _characters(strings: pa.Array) -> pa.ListArray:
    """'["Maya","Herself"]' -> ['Maya', 'Herself'] without parsing JSON row by row."""
    inner = pc.replace_substring_regex(strings, r'^\["|"\]$', "")
    lists = _split(inner, '","')
    values = pc.replace_substring(lists.values, '\\"', '"')
    return pa.ListArray.from_arrays(lists.offsets, values, mask=pc.is_null(lists))


def _titles(batch: pa.RecordBatch) -> pa.RecordBatch:
    col = batch.column
    return pa.RecordBatch.from_arrays(
        [
            _code_ids(col("tconst")),
            col("titleType"),
            col("primaryTitle"),
            col("originalTitle"),
            pc.fill_null(pc.equal(col("isAdult"), "1"), False),
            _ints(col("startYear"), pa.int32()),
            _ints(col("endYear"), pa.int32()),
            _ints(col("runtimeMinutes"), pa.int32()),
            _split(col("genres")),
        ],
        schema=TITLES_SCHEMA,
    )


def _names(batch: pa.RecordBatch) -> pa.RecordBatch:
    col = batch.column
    professions = _split(col("primaryProfession"))
    return pa.RecordBatch.from_arrays(
        [
            _code_ids(col("nconst")),
            col("primaryName"),
            _ints(col("birthYear"), pa.int32()),
            _ints(col("deathYear"), pa.int32()),
            professions,
            _split_code_ids(col("knownForTitles")),
            _has_actor_profession(professions),
        ],
        schema=NAMES_SCHEMA,
    )


def _has_actor_profession(professions: pa.ListArray) -> pa.Array:
    if len(professions) == 0:
        return pa.array([], pa.bool_())
    row_of_value = pc.list_parent_indices(professions)
    is_actor_value = pc.is_in(pc.list_flatten(professions), pa.array(ACTOR_PROFESSIONS))
    actor_rows = pc.unique(pc.filter(row_of_value, is_actor_value))
    return pc.is_in(pa.array(range(len(professions)), pa.int64()), pc.cast(actor_rows, pa.int64()))


def _principals(batch: pa.RecordBatch) -> pa.RecordBatch:
    col = batch.column
    return pa.RecordBatch.from_arrays(
        [
            _code_ids(col("tconst")),
            _ints(col("ordering"), pa.int32()),
            _code_ids(col("nconst")),
            col("category"),
            col("job"),
            _characters(col("characters")),
        ],
        schema=PRINCIPALS_SCHEMA,
    )


# IMDb's header names, in IMDb's order (the sample server writes its files with them)
TITLE_BASICS_COLUMNS = (
    "tconst",
    "titleType",
    "primaryTitle",
    "originalTitle",
    "isAdult",
    "startYear",
    "endYear",
    "runtimeMinutes",
    "genres",
)
NAME_BASICS_COLUMNS = ("nconst", "primaryName", "birthYear", "deathYear", "primaryProfession", "knownForTitles")
PRINCIPALS_COLUMNS = ("tconst", "ordering", "nconst", "category", "job", "characters")


@dataclass(frozen=True)
class _Dataset:
    source: str  # IMDb's file name without .tsv(.gz)
    table: str  # our Parquet table name
    columns: tuple[str, ...]  # IMDb's header names that we read
    convert: Callable[[pa.RecordBatch], pa.RecordBatch]
    key: str  # the id column that must parse, else the row is dropped


DATASETS: tuple[_Dataset, ...] = (
    _Dataset(
        "title.basics",
        "titles",
        TITLE_BASICS_COLUMNS,
        _titles,
        "id",
    ),
    _Dataset(
        "name.basics",
        "names",
        NAME_BASICS_COLUMNS,
        _names,
        "id",
    ),
    _Dataset(
        "title.principals",
        "principals",
        PRINCIPALS_COLUMNS,
        _principals,
        "title_id",
    ),
)


# --- building the index --------------------------------------------------------------


@dataclass
class TableResult:
    table: str
    source: str
    rows: int
    invalid_rows: int  # wrong column count or unparsable id: dropped
    row_groups: int
    path: str


@dataclass
class IndexResult:
    """What :func:`build_index` did; every field is plain data for asset metadata."""

    out_dir: str
    tables: dict[str, TableResult] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)  # tables whose source had not changed
    missing: list[str] = field(default_factory=list)  # IMDb files not found in files_dir
    adult_titles: int = 0
    actors: int = 0
    elapsed_s: float = 0.0

    @property
    def rows(self) -> dict[str, int]:
        return {name: t.rows for name, t in self.tables.items()}

    def to_metadata(self) -> dict:
        return {
            "rows": self.rows,
            "invalid_rows": {name: t.invalid_rows for name, t in self.tables.items()},
            "unchanged": self.unchanged,
            "missing": self.missing,
            "adult_titles": self.adult_titles,
            "actors": self.actors,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def find_source_file(files_dir: Path, source: str) -> Path | None:
    """``<source>.tsv.gz`` or ``<source>.tsv`` in ``files_dir`` (the .gz when both)."""
    for suffix in (".tsv.gz", ".tsv"):
        candidate = Path(files_dir) / f"{source}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def build_index(
    files_dir: Path | str,
    out_dir: Path | str,
    chunk_rows: int = 200_000,
    *,
    force: bool = False,
    log: ProgressLog | None = None,
) -> IndexResult:
    """Convert the IMDb TSV files in ``files_dir`` to ``<out_dir>/{titles,names,principals}.parquet``.

    Each file is read in blocks and written in row groups of at most ``chunk_rows``
    rows. A table whose source file has the size and mtime recorded at the last build
    is left as it is (unless ``force``). Files absent from ``files_dir`` are listed in
    ``missing``; at least one must be present. ``log`` gets progress lines per table
    (rows converted, rate).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out)
    result = IndexResult(out_dir=str(out))
    for dataset in DATASETS:
        source = find_source_file(Path(files_dir), dataset.source)
        if source is None:
            result.missing.append(dataset.source)
            continue
        stamp = _source_stamp(source)
        previous = manifest.get("tables", {}).get(dataset.table)
        if not force and previous and previous.get("stamp") == stamp and IndexFolder(out).table(dataset.table).exists():
            table = TableResult(**{k: v for k, v in previous.items() if k in TableResult.__dataclass_fields__})
            result.unchanged.append(dataset.table)
            stats = previous.get("stats", {})
        else:
            table, stats = _convert(dataset, source, IndexFolder(out).table(dataset.table), chunk_rows, log)
            manifest.setdefault("tables", {})[dataset.table] = {**asdict(table), "stamp": stamp, "stats": stats}
            _write_manifest(out, manifest)
        result.tables[dataset.table] = table
        result.adult_titles += stats.get("adult_titles", 0)
        result.actors += stats.get("actors", 0)
    if not result.tables:
        raise FileNotFoundError(
            f"no IMDb dataset files in {files_dir}: expected one of "
            + ", ".join(f"{d.source}.tsv(.gz)" for d in DATASETS)
        )
    result.elapsed_s = time.perf_counter() - started
    return result


def _source_stamp(path: Path) -> dict:
    st = path.stat()
    return {"file": path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_manifest(out: Path) -> dict:
    try:
        return json.loads(IndexFolder(out).manifest.read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(out: Path, manifest: dict) -> None:
    write_atomic(IndexFolder(out).manifest, json.dumps(manifest, indent=2))


# The TSV is read in blocks of this size, whatever ``chunk_rows`` (the Parquet row group
# size). The reader keeps dozens of blocks in flight (read-ahead, parallel parsing), so
# the block size, not the file size, bounds memory: on synthetic files of a twentieth of
# IMDb's sizes the peak was 484 MB with the 20 MB blocks chunk_rows once implied, about
# 400 MB with 4 MB, about 290 MB with 1 MB, at the same CPU time and with identical
# output (benchmarks/bench_memory.py). It must exceed the longest line (IMDb's are a few KB).
READ_BLOCK_BYTES = 1 << 20


def _open_tsv(source: Path, columns: tuple[str, ...], on_invalid: Callable) -> pacsv.CSVStreamingReader:
    try:
        return pacsv.open_csv(
            source,  # a path ending in .gz is decompressed on the fly
            read_options=pacsv.ReadOptions(block_size=READ_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter="\t",
                quote_char=False,
                escape_char=False,
                double_quote=False,
                newlines_in_values=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns),
                column_types={name: pa.string() for name in columns},
                null_values=["\\N"],
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ValueError(f"{source} is not an IMDb {', '.join(columns[:2])}... TSV file: {exc}") from exc


def _convert(
    dataset: _Dataset, source: Path, target: Path, chunk_rows: int, log: ProgressLog | None = None
) -> tuple[TableResult, dict]:
    invalid = 0

    def on_invalid(_row) -> str:
        nonlocal invalid
        invalid += 1
        return "skip"

    reader = _open_tsv(source, dataset.columns, on_invalid)
    rows = row_groups = adult = actors = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    # The rows of a gzipped TSV are not known before the end: no total, no ETA.
    progress = Progress(f"imdb_index: converting {source.name} to {dataset.table}.parquet", None, log, unit="rows")
    # One chunk at a time into the temp file; the table appears whole or not at all.
    with (
        atomic_path(target) as partial,
        progress,
        pq.ParquetWriter(partial, dataset_schema(dataset), compression="zstd") as writer,
    ):

        def flush(limit: int) -> None:
            nonlocal pending, pending_rows, row_groups
            while pending_rows >= limit and pending_rows > 0:
                buffered = pa.Table.from_batches(pending, schema=dataset_schema(dataset))
                group = buffered.slice(0, chunk_rows)
                writer.write_table(group, row_group_size=chunk_rows)
                row_groups += 1
                rest = buffered.slice(chunk_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows

        for raw in reader:
            typed = dataset.convert(raw)
            keep = pc.is_valid(typed.column(dataset.key))
            if not pc.all(keep).as_py():
                invalid += len(typed) - pc.sum(keep).as_py()
                typed = typed.filter(keep)
            rows += len(typed)
            progress.update(len(typed))
            if "is_adult" in typed.schema.names:
                adult += pc.sum(typed.column("is_adult")).as_py() or 0
            if "is_actor" in typed.schema.names:
                actors += pc.sum(typed.column("is_actor")).as_py() or 0
            pending.append(typed)
            pending_rows += len(typed)
            flush(chunk_rows)
        flush(1)
    stats = (
        {"adult_titles": adult} if dataset.table == "titles" else {"actors": actors} if dataset.table == "names" else {}
    )
    return TableResult(dataset.table, source.name, rows, invalid, row_groups, str(target)), stats


def dataset_schema(dataset: _Dataset) -> pa.Schema:
    return {"titles": TITLES_SCHEMA, "names": NAMES_SCHEMA, "principals": PRINCIPALS_SCHEMA}[dataset.table]


# --- using the index at crawl time ---------------------------------------------------


def table_path(index_dir: Path | str, table: str) -> Path:
    return IndexFolder(Path(index_dir)).table(table)


def has_index(index_dir: Path | str | None, table: str = "titles") -> bool:
    """Whether ``index_dir`` holds ``table``; without it the crawl probes every id."""
    return index_dir is not None and table_path(index_dir, table).is_file()


def _read(index_dir: Path | str, table: str, columns: list[str], filters=None) -> pa.Table:
    path = table_path(index_dir, table)
    if not path.is_file():
        raise FileNotFoundError(f"the IMDb dataset index has no {table} table at {path}: build it with build_index")
    return pq.read_table(path, columns=columns, filters=filters)


def _id_filter(column: str, ids: Iterable[int] | None):
    """A Parquet filter (row groups pruned by min/max) selecting ``ids``."""
    if ids is None:
        return None, None
    if isinstance(ids, range) and ids.step == 1:
        return [(column, ">=", ids.start), (column, "<", ids.stop)], None
    wanted = sorted(set(int(i) for i in ids))
    if not wanted:
        return [], wanted
    return [(column, ">=", wanted[0]), (column, "<=", wanted[-1])], wanted


def _select(index_dir, table: str, column: str, columns: list[str], ids) -> pa.Table:
    filters, wanted = _id_filter(column, ids)
    if filters == []:
        return _read(index_dir, table, columns).slice(0, 0)
    data = _read(index_dir, table, columns, filters or None)
    if wanted is not None:
        data = data.filter(pc.is_in(data.column(column), pa.array(wanted, pa.int64())))
    return data


class CrawlIds(list):
    """The ids a crawl partition should request, ascending, with why others were left out.

    ``skipped`` counts ids not requested by reason: ``not_in_index`` (no such title),
    ``adult`` (isAdult=1), ``title_type`` (not one of the wanted types).
    ``beyond_index`` counts ids kept because they are newer than the index (above its
    highest id), so the index cannot say they do not exist: they are probed.
    """

    def __init__(self, ids: Iterable[int], skipped: dict[str, int], beyond_index: int = 0):
        super().__init__(ids)
        self.skipped = skipped
        self.beyond_index = beyond_index


def ids_to_crawl(
    index_dir: Path | str,
    first: int,
    last: int,
    *,
    skip_adult: bool = True,
    title_types: Collection[str] | None = None,
    probe_beyond_index: bool = True,
) -> CrawlIds:
    """Title ids in ``first..last`` (inclusive) worth requesting, per the index."""
    if last < first:
        raise ValueError(f"bad id range {first}..{last}")
    data = _select(index_dir, "titles", "id", ["id", "is_adult", "title_type"], range(first, last + 1))
    ids = pc.unique(data.column("id"))
    skipped = {"not_in_index": 0, "adult": 0, "title_type": 0}
    if skip_adult:
        adult = pc.fill_null(data.column("is_adult"), False)
        skipped["adult"] = pc.sum(adult).as_py() or 0
        data = data.filter(pc.invert(adult))
    if title_types is not None:
        wanted = pc.is_in(data.column("title_type"), pa.array(sorted(title_types), pa.string()))
        wanted = pc.fill_null(wanted, False)
        skipped["title_type"] = len(data) - (pc.sum(wanted).as_py() or 0)
        data = data.filter(wanted)
    keep = sorted(set(data.column("id").to_pylist()))
    highest = max_title_id(index_dir)
    beyond = []
    if probe_beyond_index and last > highest:
        beyond = list(range(max(first, highest + 1), last + 1))
    covered_last = min(last, highest) if probe_beyond_index else last
    skipped["not_in_index"] = max(0, covered_last - first + 1 - len(ids))
    return CrawlIds(keep + beyond, skipped, beyond_index=len(beyond))


def index_title_facts(index_dir: Path | str, ids: Iterable[int]) -> dict[int, dict]:
    """Per title id found in the index: title_type, genres (list), is_adult, start_year,
    primary_title, original_title. Ids not in the index are absent from the result."""
    columns = ["id", "title_type", "genres", "is_adult", "start_year", "primary_title", "original_title"]
    data = _select(index_dir, "titles", "id", columns, ids)
    facts = {}
    for row in data.to_pylist():
        title_id = row.pop("id")
        row["genres"] = row["genres"] or []
        facts[title_id] = row
    return facts


def actor_ids(index_dir: Path | str, ids: Iterable[int] | None = None) -> set[int]:
    """Persons whose primaryProfession includes actor or actress (among ``ids`` if given)."""
    data = _select(index_dir, "names", "id", ["id", "is_actor"], ids)
    return set(data.filter(pc.fill_null(data.column("is_actor"), False)).column("id").to_pylist())


def max_title_id(index_dir: Path | str) -> int:
    """The highest title id in the index (0 when empty), from Parquet statistics."""
    return _max_id(table_path(index_dir, "titles"))


def max_person_id(index_dir: Path | str) -> int:
    """The highest person id in the index (0 when empty)."""
    return _max_id(table_path(index_dir, "names"))


def _max_id(path: Path) -> int:
    if not path.is_file():
        raise FileNotFoundError(f"no index table at {path}: build it with build_index")
    meta = pq.ParquetFile(path).metadata
    position = meta.schema.to_arrow_schema().get_field_index("id")
    highest = 0
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(position).statistics
        if stats is None or not stats.has_min_max:
            # No statistics: read the column (still just one int column).
            return int(pc.max(pq.read_table(path, columns=["id"]).column("id")).as_py() or 0)
        highest = max(highest, stats.max)
    return int(highest)


def index_title_cast(index_dir: Path | str, ids: Iterable[int]) -> dict[int, list[tuple[int, str | None, str]]]:
    """Per title id: its principals as (person id, primary name, category), by billing
    order. Titles without principals are absent; a person without a names row has name
    None. Joins OMDb's actor names to ids, and is the cast a merge takes from the index."""
    principals = _select(index_dir, "principals", "title_id", ["title_id", "ordering", "person_id", "category"], ids)
    if not len(principals):
        return {}
    people = sorted(set(principals.column("person_id").to_pylist()))
    names = dict(
        zip(*_select(index_dir, "names", "id", ["id", "primary_name"], people).to_pydict().values(), strict=True)
    )
    cast: dict[int, list[tuple[int, int, str | None, str]]] = {}
    for row in principals.to_pylist():
        cast.setdefault(row["title_id"], []).append(
            (row["ordering"] or 0, row["person_id"], names.get(row["person_id"]), row["category"] or "")
        )
    return {title: [(pid, name, cat) for _, pid, name, cat in sorted(rows)] for title, rows in cast.items()}
