"""The MPDS release: meta.csv, posters.csv, actors.csv, typed Parquet and image folders.

The CSVs follow the paper's release format exactly (list and dict cells as JSON); the
Parquet files beside them carry the same columns with Arrow list and map types; and
``posters/`` is an imagefolder (``metadata.jsonl`` with ``file_name`` and ``text``) that
Hugging Face ``datasets`` and diffusers' training scripts read as they are.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from ..base.files import atomic_open, atomic_path
from ..base.folders import RELEASE_TABLES, ExportFolder, ImageFolder, image_file_name
from ..base.progress import Progress, ProgressLog
from ..base.rules import RuleResult
from ..imdb.ids import parse_person_id, person_url, title_url
from .filters import as_actor_dict, as_genre_list, as_text
from .image_checks import OK
from .manifest import read_manifest
from .prompts import synopsis_prompt

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
MAX_GENRES = 3
# Movies per batch: each file is written batch by batch. At 400k rows, 5,000 peaked
# about 150 MB lower than 20,000 (benchmarks/bench_memory.py) at the same speed.
EXPORT_BATCH_ROWS = 5_000
MIN_IMAGE_BYTES = 5120
TITLE_URL_RE = re.compile(r"^https://www\.imdb\.com/title/tt\d{7,9}$")
PERSON_URL_RE = re.compile(r"^https://www\.imdb\.com/name/nm\d{7,9}$")
HTTP_URL_RE = re.compile(r"^https?://[^\s/]+/\S*$")


@dataclass
class ExportResult:
    export_dir: Path
    files: dict[str, Path]
    counts: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {"export_dir": str(self.export_dir), **self.counts}


# --- writing ---------------------------------------------------------------------


def write_export(
    movies: pd.DataFrame | Path,
    poster_manifest: pd.DataFrame | None,
    poster_dirs: Path | Sequence[Path],
    actors: pd.DataFrame,
    actor_images: Path | None,
    export_dir: Path,
    texts: Mapping[int, str] | pa.Table | None = None,
    extra_poster_columns: pd.DataFrame | pa.Table | None = None,
    log: ProgressLog | None = None,
    *,
    batch_rows: int = EXPORT_BATCH_ROWS,
) -> ExportResult:
    """Write the release under ``export_dir``.

    ``movies`` is the curated movies table: a DataFrame, or the path of its Parquet file,
    which is then read ``batch_rows`` at a time (every file is written batch by batch,
    so memory stays bounded whatever the number of movies). ``poster_manifest`` holds
    the download manifests' rows (None: read each of ``poster_dirs``' manifest); only
    movies whose poster verified get a posters.csv row and an image. ``actor_images``
    is the actor photo folder with its manifest; None exports every actor without photos.
    ``texts`` replaces the default poster text (the movie-synopsis prompt): a mapping
    id -> text, or an Arrow table with ``id`` and ``text`` (compact at scale);
    ``extra_poster_columns`` (an ``id`` column plus others, as a DataFrame or an Arrow
    table) adds columns to posters.parquet and metadata.jsonl, never to posters.csv.
    ``log`` gets progress lines while the images are linked into the export.
    """
    export = ExportFolder(Path(export_dir))
    for folder in (export.path, export.posters_dir, export.actors_dir):
        folder.mkdir(parents=True, exist_ok=True)
    text_of = _TextLookup(texts)
    extras = _ExtraColumns(extra_poster_columns)
    poster_index = _PosterIndex(poster_manifest, _as_dirs(poster_dirs))
    batches = _movie_batches(movies, batch_rows)
    pa.default_memory_pool().release_unused()  # what reading the inputs left behind

    actor_rows, actor_files = _actor_rows(actors, actor_images)
    poster_schema = pa.schema([("id", pa.int64()), ("text", pa.string()), *extras.fields])
    # Bit sets, not Python sets: 400k small objects kept across batches would pin the
    # memory each batch frees (hundreds of MB of fragmentation at 400k rows).
    seen, linked = IdSet(), IdSet()
    meta_rows = poster_rows = custom_texts = 0
    with ExitStack() as stack:
        progress = stack.enter_context(
            Progress("export: posters", poster_index.count_in(batches.ids()), log, unit="images")
        )
        meta_csv = _CsvOut(stack, export.meta_csv, META_COLUMNS)
        posters_csv = _CsvOut(stack, export.posters_csv, POSTERS_COLUMNS)
        meta_parquet = _ParquetOut(stack, export.parquet("meta"), META_SCHEMA)
        posters_parquet = _ParquetOut(stack, export.parquet("posters"), poster_schema)
        jsonl = stack.enter_context(atomic_open(export.posters_metadata, "w", encoding="utf-8"))
        for batch in batches:
            meta = _meta_rows(batch, seen)
            posters = []
            batch_texts = text_of.get_many([row["id"] for row in meta])
            for row, custom in zip(meta, batch_texts):
                source = poster_index.source(row["id"])
                if source is None:
                    continue
                movie = row["_movie"]
                text = custom or synopsis_prompt(movie["title"], row["genres"], list(row["actors"]), movie["synopsis"])
                custom_texts += custom is not None
                posters.append(
                    {"id": row["id"], "text": text, "file_name": export.poster_file_name(row["id"]), "_source": source}
                )
            _link_images(export.posters_dir, {p["file_name"]: p["_source"] for p in posters}, progress)
            for p in posters:
                linked.add(p["id"])
            meta_records = [{k: r[k] for k in META_COLUMNS} for r in meta]
            meta_csv.write(_jsonify(r) for r in meta_records)
            meta_parquet.write(
                {
                    **{c: [r[c] for r in meta_records] for c in META_COLUMNS},
                    "actors": [list(r["actors"].items()) for r in meta_records],
                }
            )
            posters_csv.write({"id": p["id"], "text": p["text"]} for p in posters)
            extra_values = extras.take([p["id"] for p in posters])
            posters_parquet.write(
                {"id": [p["id"] for p in posters], "text": [p["text"] for p in posters], **extra_values}
            )
            jsonl.writelines(
                json.dumps(
                    {"file_name": p["file_name"], "text": p["text"], **{k: v[n] for k, v in extra_values.items()}},
                    ensure_ascii=False,
                )
                + "\n"
                for n, p in enumerate(posters)
            )
            meta_rows += len(meta)
            poster_rows += len(posters)
            pa.default_memory_pool().release_unused()  # the batch's Arrow buffers, back to the system
        _remove_stale(export.posters_dir, _PosterNames(linked, export))
        _write_csv(export.actors_csv, ACTORS_COLUMNS, actor_rows)
        _write_parquet(export.parquet("actors"), ACTORS_SCHEMA, {c: [r[c] for r in actor_rows] for c in ACTORS_COLUMNS})
        _sync_images(
            export.actors_dir, actor_files, Progress("export: actor photos", len(actor_files), log, unit="images")
        )
    paths = [path for table in RELEASE_TABLES for path in (export.csv(table), export.parquet(table))]
    files = {path.name: path for path in (*paths, export.posters_metadata)}
    return ExportResult(
        export.path,
        files,
        {
            "meta_rows": meta_rows,
            "poster_rows": poster_rows,
            "movies_without_verified_poster": meta_rows - poster_rows,
            "actor_rows": len(actor_rows),
            "actor_images": len(actor_files),
            "custom_texts": custom_texts,
        },
    )


class _MovieBatches:
    """The movies as lists of row dicts, ``batch_rows`` at a time, from a DataFrame or a
    Parquet file (read batch by batch); iterable more than once."""

    def __init__(self, movies: pd.DataFrame | Path, batch_rows: int):
        self.movies, self.batch_rows = movies, max(1, batch_rows)

    def ids(self) -> Iterable[int]:
        if isinstance(self.movies, pd.DataFrame):
            return self.movies["id"].astype(int).tolist() if "id" in self.movies else []
        return pq.read_table(self.movies, columns=["id"]).column("id").to_pylist()

    def __iter__(self) -> Iterator[list[dict]]:
        if isinstance(self.movies, pd.DataFrame):
            for start in range(0, len(self.movies), self.batch_rows):
                yield self.movies.iloc[start : start + self.batch_rows].to_dict("records")
            return
        for batch in pq.ParquetFile(self.movies).iter_batches(batch_size=self.batch_rows):
            yield batch.to_pylist()


def _movie_batches(movies: pd.DataFrame | Path | str, batch_rows: int) -> _MovieBatches:
    if isinstance(movies, str):
        movies = Path(movies)
    if isinstance(movies, Path) and not movies.is_file():
        raise FileNotFoundError(f"{movies} does not exist: materialise the asset that writes it first")
    return _MovieBatches(movies, batch_rows)


class _TextLookup:
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


class _ExtraColumns:
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


class _CsvOut:
    """A CSV written row batch by row batch; it appears whole when the export ends."""

    def __init__(self, stack: ExitStack, path: Path, columns: list[str]):
        handle = stack.enter_context(atomic_open(path, "w", newline="", encoding="utf-8"))
        self._writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        self._writer.writeheader()

    def write(self, rows: Iterable[dict]) -> None:
        self._writer.writerows(rows)


class _ParquetOut:
    """A Parquet file of ``schema`` written batch by batch; it appears whole at the end."""

    def __init__(self, stack: ExitStack, path: Path, schema: pa.Schema):
        self.schema = schema
        tmp = stack.enter_context(atomic_path(path))
        self._writer = stack.enter_context(pq.ParquetWriter(tmp, schema))

    def write(self, columns: dict[str, list]) -> None:
        table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in self.schema}, schema=self.schema)
        if table.num_rows:
            self._writer.write_table(table)


ACTOR_PHOTOS_COLUMNS = [
    "actor_id",
    "rank",
    "source",
    "photo_url",
    "caption",
    "crop_box",
    "file_name",
    "sha256",
    "bytes",
    "width",
    "height",
]
ACTOR_PHOTOS_SCHEMA = pa.schema(
    [
        ("actor_id", pa.int64()),
        ("rank", pa.int64()),
        ("source", pa.string()),
        ("photo_url", pa.string()),
        ("caption", pa.string()),
        ("crop_box", pa.list_(pa.int64())),
        ("file_name", pa.string()),
        ("sha256", pa.string()),
        ("bytes", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
    ]
)


def write_actor_photos_export(photos: pd.DataFrame, export_dir: Path, log: ProgressLog | None = None) -> dict[str, Any]:
    """``actor_photos.csv`` and ``.parquet`` (one row per 512x512 face crop: where the
    photo came from, its caption, the crop box in the photo's pixels) and the crops under
    ``actor_photos/``, for the actors of ``actors.csv``. Returns counts for metadata."""
    export = ExportFolder(Path(export_dir))
    export.actor_photos_dir.mkdir(parents=True, exist_ok=True)
    listed = set(pd.read_csv(export.actors_csv)["id"].astype(int)) if export.actors_csv.exists() else set()
    rows, files = [], {}
    for photo in photos.to_dict("records") if not photos.empty else []:
        source = Path(photo["path"])
        if int(photo["actor_id"]) not in listed or not source.is_file():
            continue
        file_name = export.actor_photo_file_name(int(photo["actor_id"]), int(photo["rank"]))
        files[Path(file_name).name] = source
        rows.append(
            {
                "actor_id": int(photo["actor_id"]),
                "rank": int(photo["rank"]),
                "source": photo["source"],
                "photo_url": photo["url"],
                "caption": as_text(photo.get("caption")),
                "crop_box": [int(v) for v in photo["crop_box"]],
                "file_name": file_name,
                "sha256": photo["sha256"],
                "bytes": int(photo["bytes"]),
                "width": int(photo["width"]),
                "height": int(photo["height"]),
            }
        )
    _sync_images(export.actor_photos_dir, files, Progress("export: actor face crops", len(files), log, unit="images"))
    _write_csv(export.actor_photos_csv, ACTOR_PHOTOS_COLUMNS, (_jsonify(r) for r in rows))
    _write_parquet(
        export.actor_photos_parquet, ACTOR_PHOTOS_SCHEMA, {c: [r[c] for r in rows] for c in ACTOR_PHOTOS_COLUMNS}
    )
    return {"actor_photo_rows": len(rows), "actors_with_photos": len({r["actor_id"] for r in rows})}


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


class _PosterNames:
    """The poster file names of the ids in ``ids`` (for ``_remove_stale``), without a string per id."""

    def __init__(self, ids: IdSet, export: ExportFolder):
        self._ids, self._export = ids, export

    def __contains__(self, name: str) -> bool:
        stem = name.removesuffix(".jpg")
        return stem.isdigit() and int(stem) in self._ids and self._export.poster_file_name(int(stem)) == name


def _meta_rows(movies: Iterable[dict], seen: IdSet | set[int]) -> list[dict]:
    """meta.csv rows of ``movies`` (row dicts), each id once across calls sharing ``seen``."""
    rows = []
    for movie in movies:
        movie_id = int(movie["id"])
        if movie_id in seen:
            continue
        seen.add(movie_id)
        movie = {**movie, "title": as_text(movie.get("title")), "synopsis": as_text(movie.get("synopsis"))}
        rows.append(
            {
                "id": movie_id,
                "movie-url": title_url(movie_id),
                "title": movie["title"],
                "genres": as_genre_list(movie.get("genres"))[:MAX_GENRES],
                "actors": _paper_person_urls(as_actor_dict(movie.get("actors"))),
                "poster-url": as_text(movie.get("poster_url")),
                "synopsis": movie["synopsis"],
                "_movie": movie,
            }
        )
    return rows


def _paper_person_urls(actors: dict[str, str]) -> dict[str, str]:
    """Person URLs as the paper wrote them: https://www.imdb.com/name/nm0000206."""
    return {name: person_url(pid) if (pid := parse_person_id(url)) else url for name, url in actors.items()}


def _as_dirs(dirs: Path | Sequence[Path] | None) -> list[Path]:
    if dirs is None:
        return []
    if isinstance(dirs, (str, Path)):
        return [Path(dirs)]
    return [Path(d) for d in dirs]


def _iter_verified(manifest: pd.DataFrame | None, dirs: list[Path]) -> Iterator[tuple[int, int, Path, str]]:
    """(id, variant, folder, file name) of each image whose manifest row is ok, found in ``dirs``.

    A row another step turned invalid (a decode failure at captioning, say) is not ok,
    so its image stays out even though the file is still there. Each folder is listed
    and its manifest read once, one folder at a time; rows are then looked up in memory
    (one dict look-up per row, whatever the number of folders). Later rows win.
    """
    if manifest is not None:  # rows of any of ``dirs``: the first folder holding the file wins
        listings = {folder: set(os.listdir(folder)) if folder.is_dir() else set() for folder in dirs}
        sources: Iterable = [(lambda: manifest, list(dirs))]
    else:  # each folder's own manifest describes that folder
        listings = None
        sources = ((lambda d=d: read_manifest(d), [d]) for d in dirs if ImageFolder(d).manifest.is_file())
    for load, folders in sources:
        frame = load()
        if frame is None or frame.empty:
            continue
        home: dict[str, Path] = {}  # file name -> the first of ``folders`` that holds it
        for folder in reversed(folders):
            names = listings[folder] if listings is not None else (os.listdir(folder) if folder.is_dir() else ())
            home.update(dict.fromkeys(names, folder))
        ok = frame[frame["status"] == OK]
        variants = ok["variant"].fillna(1).astype(int) if "variant" in ok else pd.Series(1, index=ok.index)
        names = ok["file_name"] if "file_name" in ok else pd.Series(None, index=ok.index, dtype=object)
        for item_id, variant, name in zip(ok["id"].astype(int), variants, names):
            name = name if isinstance(name, str) and name else image_file_name(item_id, variant)
            folder = home.get(name)
            if folder is not None:
                yield item_id, variant, folder, name


def _verified_files(manifest: pd.DataFrame | None, dirs: list[Path]) -> dict[tuple[int, int], Path]:
    """(id, variant) -> path of each verified image (see ``_iter_verified``)."""
    return {(item_id, variant): folder / name for item_id, variant, folder, name in _iter_verified(manifest, dirs)}


class _PosterIndex:
    """id -> the verified poster (variant 1), held compactly: a folder number per id and a
    file name only where it is not the standard one (400k posters: tens of MB, not hundreds)."""

    def __init__(self, manifest: pd.DataFrame | None, dirs: list[Path]):
        self._folders: list[Path] = []
        numbers: dict[Path, int] = {}
        self._folder_of: dict[int, int] = {}
        self._odd_names: dict[int, str] = {}
        for item_id, variant, folder, name in _iter_verified(manifest, dirs):
            if variant != 1:
                continue
            if folder not in numbers:
                numbers[folder] = len(self._folders)
                self._folders.append(folder)
            self._folder_of[item_id] = numbers[folder]
            if name != image_file_name(item_id, 1):
                self._odd_names[item_id] = name
            else:
                self._odd_names.pop(item_id, None)

    def source(self, item_id: int) -> Path | None:
        number = self._folder_of.get(item_id)
        if number is None:
            return None
        return self._folders[number] / self._odd_names.get(item_id, image_file_name(item_id, 1))

    def count_in(self, ids: Iterable[int]) -> int:
        return len({i for i in ids if i in self._folder_of})


def _actor_rows(actors: pd.DataFrame, images_dir: Path | None) -> tuple[list[dict], dict[str, Path]]:
    images: dict[int, list[Path]] | None = None
    if images_dir is not None:
        images = {}
        for (actor_id, _variant), path in sorted(_verified_files(None, [Path(images_dir)]).items()):
            images.setdefault(actor_id, []).append(path)
    rows, files = [], {}
    for actor in actors.drop_duplicates("id").to_dict("records"):
        actor_id = int(actor["id"])
        if images is not None:
            mine = images.get(actor_id)
            if not mine:
                continue  # the paper's actors.csv lists actors with photos
            files.update({path.name: path for path in mine})
        rows.append(
            {
                "id": actor_id,
                "actors-url": person_url(actor_id),
                "actors name": as_text(actor.get("name")),
                "image-url": as_text(actor.get("image_url")),
            }
        )
    return rows, files


def _sync_images(folder: Path, wanted: dict[str, Path], progress: Progress | None = None) -> None:
    """Make ``folder``'s .jpg files exactly ``wanted``, hard-linking where the disk allows;
    ``progress`` counts the images."""
    progress = progress or Progress(folder.name, len(wanted), unit="images")
    _remove_stale(folder, wanted)
    with progress:
        _link_images(folder, wanted, progress)


def _remove_stale(folder: Path, wanted: Container[str]) -> None:
    """Remove ``folder``'s .jpg files not named in ``wanted``."""
    with os.scandir(folder) as entries:  # streamed: Path.glob lists 400k entries first
        for entry in entries:
            if entry.name.endswith(".jpg") and entry.name not in wanted:
                os.unlink(entry.path)


def _link_images(folder: Path, wanted: dict[str, Path], progress: Progress) -> None:
    """Put each of ``wanted`` (file name -> source) into ``folder``; ``progress`` counts them."""
    for name, source in wanted.items():
        progress.update()
        target = folder / name
        if target.exists():
            if os.path.samefile(source, target):
                continue
            target.unlink()
        try:
            os.link(source, target)  # the sources are replaced atomically, never rewritten in place
        except OSError:
            shutil.copy2(source, target)


def _jsonify(row: dict) -> dict:
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in row.items()}


def _write_csv(path: Path, columns: list[str], rows: Iterable[dict]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, schema: pa.Schema, columns: dict[str, list]) -> None:
    table = pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


# --- checks ----------------------------------------------------------------------


def check_export(
    export_dir: Path,
    adult_ids: Iterable[int] = (),
    min_image_bytes: int = MIN_IMAGE_BYTES,
) -> list[RuleResult]:
    """The export's asset checks: schemas, unique ids, poster images, no adult row, URLs.

    ``adult_ids`` are the ids the filters dropped as adult (from the movie decisions);
    rows with the genre "Adult" fail the check whether or not they are listed.
    """
    export = ExportFolder(Path(export_dir))
    frames = {name: _read_csv_strict(export.csv(name)) for name in RELEASE_TABLES}
    return [
        _check_schemas(export, frames),
        _check_unique_ids(export, frames),
        _check_poster_images(export, frames["posters"], min_image_bytes),
        _check_no_adult(frames["meta"], set(int(i) for i in adult_ids)),
        _check_urls(frames),
    ]


def _read_csv_strict(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def _check_schemas(export: ExportFolder, frames: dict) -> RuleResult:
    problems = []
    expected = {
        "meta": (META_COLUMNS, META_SCHEMA),
        "posters": (POSTERS_COLUMNS, POSTERS_SCHEMA),
        "actors": (ACTORS_COLUMNS, ACTORS_SCHEMA),
    }
    for name, (columns, schema) in expected.items():
        frame = frames[name]
        if frame is None:
            problems.append(f"{name}.csv is missing")
        elif list(frame.columns) != columns:
            problems.append(f"{name}.csv columns {list(frame.columns)} != {columns}")
        parquet = export.parquet(name)
        if not parquet.is_file():
            problems.append(f"{name}.parquet is missing")
            continue
        actual = pq.read_schema(parquet)
        for want in schema:
            if actual.get_field_index(want.name) < 0:
                problems.append(f"{name}.parquet lacks {want.name}")
            elif not actual.field(want.name).type.equals(want.type):
                problems.append(f"{name}.parquet {want.name} is {actual.field(want.name).type}, not {want.type}")
    return RuleResult(
        "export_schemas",
        not problems,
        "CSV columns and Parquet types are exactly the release format",
        {"problems": problems[:20]},
    )


def _check_unique_ids(export: ExportFolder, frames: dict) -> RuleResult:
    duplicates = {}
    for name, frame in frames.items():
        if frame is not None:
            counts = frame["id"].value_counts() if "id" in frame else pd.Series(dtype=int)
            dup = counts[counts > 1]
            if len(dup):
                duplicates[export.csv(name).name] = dup.index.tolist()[:20]
    return RuleResult("export_unique_ids", not duplicates, "ids are unique in every CSV", {"duplicates": duplicates})


def _check_poster_images(export: ExportFolder, posters: pd.DataFrame | None, min_bytes: int) -> RuleResult:
    bad: list[str] = []
    checked = 0
    for poster_id in [] if posters is None else posters["id"]:
        path = export.poster(poster_id)
        checked += 1
        if not path.is_file():
            bad.append(f"{poster_id}: no image")
            continue
        size = path.stat().st_size
        if size < min_bytes:
            bad.append(f"{poster_id}: {size} bytes")
            continue
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            bad.append(f"{poster_id}: does not decode ({error})")
    lines = 0
    jsonl = export.posters_metadata
    if jsonl.is_file():
        lines = sum(1 for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip())
    if lines != checked:
        bad.append(f"metadata.jsonl has {lines} rows, posters.csv {checked}")
    return RuleResult(
        "export_poster_images",
        not bad,
        f"every posters.csv id has an image of at least {min_bytes} bytes that decodes",
        {"checked": checked, "problems": bad[:20], "failures": len(bad)},
    )


def _check_no_adult(meta: pd.DataFrame | None, adult_ids: set[int]) -> RuleResult:
    found = []
    for row in [] if meta is None else meta.to_dict("records"):
        genres = as_genre_list(row.get("genres"))
        if any(g.lower() == "adult" for g in genres) or (row["id"].isdigit() and int(row["id"]) in adult_ids):
            found.append(row["id"])
    return RuleResult("export_no_adult", not found, "no adult title in meta.csv", {"adult_ids": found[:20]})


def _check_urls(frames: dict) -> RuleResult:
    bad: list[str] = []
    meta, actors = frames["meta"], frames["actors"]
    for row in [] if meta is None else meta.to_dict("records"):
        expected = title_url(int(row["id"])) if row["id"].isdigit() and int(row["id"]) > 0 else None
        if row["movie-url"] != expected or not TITLE_URL_RE.match(row["movie-url"]):
            bad.append(f"meta {row['id']}: movie-url {row['movie-url']}")
        if row["poster-url"] and not HTTP_URL_RE.match(row["poster-url"]):
            bad.append(f"meta {row['id']}: poster-url {row['poster-url'][:60]}")
        try:
            cast = json.loads(row["actors"]) if row["actors"] else {}
        except ValueError:
            cast = None
        if not isinstance(cast, dict) or not all(PERSON_URL_RE.match(str(u)) for u in cast.values()):
            bad.append(f"meta {row['id']}: actors {row['actors'][:60]}")
    for row in [] if actors is None else actors.to_dict("records"):
        if not PERSON_URL_RE.match(row["actors-url"]) or (
            row["id"].isdigit() and row["actors-url"] != person_url(int(row["id"]))
        ):
            bad.append(f"actors {row['id']}: actors-url {row['actors-url']}")
        if row["image-url"] and not HTTP_URL_RE.match(row["image-url"]):
            bad.append(f"actors {row['id']}: image-url {row['image-url'][:60]}")
    return RuleResult(
        "export_url_formats", not bad, "URLs are in the paper's formats", {"problems": bad[:20], "failures": len(bad)}
    )
