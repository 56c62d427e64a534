"""The MPDS release: meta.csv, posters.csv, actors.csv, typed Parquet and image folders.

``write_export`` streams the curated movies batch by batch into the paper's CSVs, the
Parquet files beside them (export_tables.py) and the ``posters/`` imagefolder
(``metadata.jsonl`` with ``file_name`` and ``text``) that Hugging Face ``datasets`` and
diffusers' training scripts read as they are; the verified images come from
export_images.py. Checks are export_checks.py's, the actor face crops
export_actor_photos.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_open
from ..base.folders import RELEASE_TABLES, ExportFolder
from ..base.progress import Progress, ProgressLog
from ..imdb.ids import parse_person_id, person_url, title_url
from .export_images import PosterIndex, PosterNames, as_dirs, link_images, remove_stale, sync_images, verified_files
from .export_lookups import ExtraColumns, IdSet, TextLookup
from .export_tables import (
    ACTORS_COLUMNS,
    ACTORS_SCHEMA,
    META_COLUMNS,
    META_SCHEMA,
    POSTERS_COLUMNS,
    CsvOut,
    ParquetOut,
    jsonify,
    write_csv,
    write_parquet,
)
from .filters import as_actor_dict, as_genre_list, as_text
from .prompts import synopsis_prompt

MAX_GENRES = 3
# Movies per batch: each file is written batch by batch (the batch size against the peak
# memory: docs/scale-and-failures.md).
EXPORT_BATCH_ROWS = 5_000


@dataclass
class ExportResult:
    export_dir: Path
    files: dict[str, Path]
    counts: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {"export_dir": str(self.export_dir), **self.counts}


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
    text_of = TextLookup(texts)
    extras = ExtraColumns(extra_poster_columns)
    poster_index = PosterIndex(poster_manifest, as_dirs(poster_dirs))
    batches = _movie_batches(movies, batch_rows)
    pa.default_memory_pool().release_unused()  # what reading the inputs left behind

    actor_rows, actor_files = _actor_rows(actors, actor_images)
    poster_schema = pa.schema([("id", pa.int64()), ("text", pa.string()), *extras.fields])
    # Bit sets, not Python sets: small objects kept across batches would pin the memory
    # each batch frees (fragmentation; measured in docs/scale-and-failures.md).
    seen, linked = IdSet(), IdSet()
    meta_rows = poster_rows = custom_texts = 0
    with ExitStack() as stack:
        progress = stack.enter_context(
            Progress("export: posters", poster_index.count_in(batches.ids()), log, unit="images")
        )
        meta_csv = CsvOut(stack, export.meta_csv, META_COLUMNS)
        posters_csv = CsvOut(stack, export.posters_csv, POSTERS_COLUMNS)
        meta_parquet = ParquetOut(stack, export.parquet("meta"), META_SCHEMA)
        posters_parquet = ParquetOut(stack, export.parquet("posters"), poster_schema)
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
            link_images(export.posters_dir, {p["file_name"]: p["_source"] for p in posters}, progress)
            for p in posters:
                linked.add(p["id"])
            meta_records = [{k: r[k] for k in META_COLUMNS} for r in meta]
            meta_csv.write(jsonify(r) for r in meta_records)
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
        remove_stale(export.posters_dir, PosterNames(linked, export))
        write_csv(export.actors_csv, ACTORS_COLUMNS, actor_rows)
        write_parquet(export.parquet("actors"), ACTORS_SCHEMA, {c: [r[c] for r in actor_rows] for c in ACTORS_COLUMNS})
        sync_images(
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


def _actor_rows(actors: pd.DataFrame, images_dir: Path | None) -> tuple[list[dict], dict[str, Path]]:
    images: dict[int, list[Path]] | None = None
    if images_dir is not None:
        images = {}
        for (actor_id, _variant), path in sorted(verified_files(None, [Path(images_dir)]).items()):
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
