"""Rebuild the ``movies`` input from a released table instead of a crawl.

IMDb blocks scrapers, so many users start from a release (MPDS's ``meta.csv``, or any
CSV or Parquet of IMDb ids and poster URLs). This reads it into the shape of the crawled
title records, so the same filters, downloads and export apply; a bad row is reported
and skipped. Column mapping and accepted cell forms: docs/sources-omdb.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..imdb.ids import parse_person_id, parse_title_id, person_code, person_url
from ..imdb.records import Era
from .filters import _decode_text

# Where the ``movies`` asset takes its titles from: the crawl's title records, or a
# released MPDS meta.csv (this module).
MovieSource = Literal["crawl", "release"]
RELEASE_ERA: Era = "release"

META_COLUMNS: tuple[str, ...] = ("id", "movie-url", "title", "genres", "actors", "poster-url", "synopsis")
POSTERS_COLUMNS: tuple[str, ...] = ("id", "text")
TITLE_URL_RE = re.compile(r"^https?://(www\.)?imdb\.com/title/tt\d{7,9}/?$")
PERSON_URL_RE = re.compile(r"^https?://(www\.)?imdb\.com/name/nm\d{7,9}/?$")
HTTP_URL_RE = re.compile(r"^https?://[^\s/]+/\S*$")
MOVIE_COLUMNS: tuple[str, ...] = (
    "id",
    "title",
    "original_title",
    "title_type",
    "year",
    "genres",
    "actors",
    "poster_url",
    "synopsis",
    "certificate",
    "is_adult",
    "era",
)


@dataclass(frozen=True)
class ReleaseColumns:
    """The column of a released table that holds each value; None: the table has none.
    ``text`` is the poster's text (MPDS keeps it in posters.csv instead)."""

    # In meta.csv's column order, so messages list MPDS's columns as the paper does.
    id: str = "id"
    movie_url: str | None = "movie-url"
    title: str | None = "title"
    genres: str | None = "genres"
    actors: str | None = "actors"
    poster_url: str | None = "poster-url"
    synopsis: str | None = "synopsis"
    text: str | None = None

    def present(self) -> dict[str, str]:
        """value -> column, for the values this table has."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


MPDS_COLUMNS = ReleaseColumns()
RELEASE_VALUES: tuple[str, ...] = tuple(f.name for f in fields(ReleaseColumns))


def release_columns(mapping: ReleaseColumns | Mapping[str, str | None] | None) -> ReleaseColumns:
    """A mapping value -> column (e.g. ``{"id": "imdb_id", "poster_url": "poster"}``) as
    ReleaseColumns; values left out are absent from the table. None: MPDS's columns."""
    if mapping is None:
        return MPDS_COLUMNS
    if isinstance(mapping, ReleaseColumns):
        return mapping
    unknown = sorted(set(mapping) - set(RELEASE_VALUES))
    if unknown:
        raise ReleaseFormatError(
            f"unknown release column mapping key(s) {', '.join(unknown)}; keys are {', '.join(RELEASE_VALUES)}"
        )
    if not mapping.get("id"):
        raise ReleaseFormatError("a release column mapping needs the id column (e.g. {'id': 'imdb_id', ...})")
    return ReleaseColumns(**{name: mapping.get(name) for name in RELEASE_VALUES})


class ReleaseFormatError(ValueError):
    """The file is not an MPDS release file at all (e.g. required columns missing)."""


@dataclass(frozen=True)
class RowError:
    file: str
    row: int  # 1-based data row, the header not counted
    columns: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.file} row {self.row} [{', '.join(self.columns)}]: {self.message}"


@dataclass
class Rehydrated:
    # columns MOVIE_COLUMNS + field_sources ("release" for each field given) + source_file;
    # is_adult False, era "release"
    movies: pd.DataFrame
    texts: dict[int, str]  # id -> poster text (posters.csv, or the table's text column)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    actors_without_ids: int = 0  # actor names the table gave without an IMDb id (left out)

    def metadata(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "movies": len(self.movies),
            "texts": len(self.texts),
            "bad_rows": len(self.errors),
            "actors_without_ids": self.actors_without_ids,
            "errors_preview": "\n".join(str(e) for e in self.errors[:20]),
        }


def load_release(
    meta_file: Path,
    posters_csv: Path | None = None,
    columns: ReleaseColumns | Mapping[str, str | None] | None = None,
) -> Rehydrated:
    """Read a release (CSV, or Parquet by its ``.parquet`` suffix) whose columns are
    ``columns`` (default: MPDS's meta.csv); bad rows go to ``errors``, a missing mapped
    column raises ReleaseFormatError. ``posters_csv`` is MPDS's (id, text) file."""
    columns = release_columns(columns)
    meta_file = Path(meta_file)
    meta = _read_table(meta_file, tuple(columns.present().values()))
    errors: list[RowError] = []
    movies: list[dict] = []
    texts: dict[int, str] = {}
    seen: set[int] = set()
    without_ids = 0
    for number, row in enumerate(meta.to_dict("records"), start=1):
        movie, problems = _parse_meta_row(row, columns)
        if movie is not None and movie["id"] in seen:
            problems["id"] = f"duplicate id {movie['id']}"
        if problems:
            errors.append(_row_error(meta_file.name, number, problems))
            continue
        seen.add(movie["id"])
        without_ids += movie.pop("_actors_without_ids")
        text = movie.pop("_text")
        if text:
            texts[movie["id"]] = text
        movie["source_file"] = str(meta_file.resolve())
        movies.append(movie)
    if posters_csv is not None:
        texts.update(_read_texts(Path(posters_csv), errors))
    return Rehydrated(
        movies=pd.DataFrame(movies, columns=[*MOVIE_COLUMNS, "field_sources", "source_file"]),
        texts=texts,
        errors=errors,
        rows_read=len(meta),
        actors_without_ids=without_ids,
    )


def _read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, required)
    return _read_csv(path, required)


def _read_parquet(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ReleaseFormatError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ReleaseFormatError(f"{path}: not a readable Parquet file ({error})") from None
    _check_columns(path, required, table.column_names)
    # Maps as (key, value) pairs and lists as Python lists, never pandas' NaN for null.
    return pd.DataFrame({name: table.column(name).to_pylist() for name in table.column_names})


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ReleaseFormatError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ReleaseFormatError(f"{path}: not a readable CSV ({error})") from None
    _check_columns(path, required, list(frame.columns))
    return frame


def _check_columns(path: Path, required: tuple[str, ...], found: list[str]) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise ReleaseFormatError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; "
            f"expected {', '.join(required)}, found {', '.join(map(str, found))}"
        )


def _parse_meta_row(row: dict, columns: ReleaseColumns) -> tuple[dict | None, dict[str, str]]:
    problems: dict[str, str] = {}
    get = {value: row.get(column) for value, column in columns.present().items()}
    id_column = columns.id
    title_id = _parse_id(get["id"], problems, id_column)
    if columns.movie_url:
        movie_url = _text(get["movie_url"]) or ""
        if not TITLE_URL_RE.match(movie_url):
            problems[columns.movie_url] = f"not an IMDb title URL: {movie_url!r}"
        elif title_id is not None and parse_title_id(movie_url) != title_id:
            problems[columns.movie_url] = f"{movie_url} is not title {title_id}"
    genres = _parse_genres(get.get("genres"), columns.genres, problems) if columns.genres else []
    actors, without_ids = _parse_actors(get.get("actors"), columns.actors, problems) if columns.actors else ({}, 0)
    poster_url = _text(get.get("poster_url")) or ""
    if poster_url and not HTTP_URL_RE.match(poster_url):
        problems[columns.poster_url] = f"not an http(s) URL: {poster_url[:80]!r}"
    if problems:
        return ({"id": title_id} if title_id is not None else None), problems
    title = _text(get.get("title"))
    movie = {
        "id": title_id,
        "title": title,
        "original_title": title,
        "title_type": None,
        "year": None,
        "genres": genres,
        "actors": actors,
        "poster_url": poster_url or None,
        "synopsis": _text(get.get("synopsis")),
        "certificate": None,
        "is_adult": False,
        "era": RELEASE_ERA,
    }
    movie["field_sources"] = {
        name: "release" for name in ("title", "genres", "actors", "poster_url", "synopsis") if movie[name]
    }
    movie["_text"] = _text(get.get("text"))
    movie["_actors_without_ids"] = without_ids
    return movie, {}


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _parse_id(value: Any, problems: dict[str, str], column: str = "id") -> int | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        number = int(value)
    else:
        text = _text(value) or ""
        if not text:
            problems[column] = "missing id"
            return None
        if text.isdigit():
            number = int(text)
        elif (parsed := parse_title_id(text)) is not None and re.fullmatch(r"(tt\d{7,9})|(https?://\S+)", text):
            number = parsed
        else:
            problems[column] = f"not an integer id: {text[:40]!r}"
            return None
    if number < 1:
        problems[column] = f"ids are positive, got {number}"
        return None
    return number


def _cell(value: Any, kind: type, column: str, problems: dict[str, str]):
    """A list or dict cell: typed (Parquet) or text (CSV: JSON or a Python literal)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return kind()
    if isinstance(value, str):
        if not value.strip():
            return kind()
        try:
            value = _decode_text(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            problems[column] = f"neither JSON nor a Python literal: {value[:60]!r}"
            return None
    return value


def _parse_genres(value: Any, column: str, problems: dict[str, str]) -> list[str]:
    if isinstance(value, str) and value.strip() and value.strip()[0] not in "[(":
        return [g.strip() for g in re.split(r"[,|]", value) if g.strip()]  # "Drama, Crime" or "Drama|Crime"
    genres = _cell(value, list, column, problems)
    if genres is None:
        return []
    if not isinstance(genres, (list, tuple)) or not all(isinstance(g, str) for g in genres):
        problems[column] = "genres must be strings"
        return []
    return [g.strip() for g in genres if g.strip()]


def _parse_actors(value: Any, column: str, problems: dict[str, str]) -> tuple[dict[str, str], int]:
    """(name -> person URL, names given without an id)."""
    if isinstance(value, str) and value.strip() and value.strip()[0] not in "[{(":
        value = [part.strip() for part in value.split(",") if part.strip()]  # "Name One, Name Two"
    cast = _cell(value, dict, column, problems)
    if cast is None:
        return {}, 0
    pairs: list[tuple[Any, Any]] = []
    if isinstance(cast, dict):
        pairs = list(cast.items())
    elif isinstance(cast, (list, tuple)):
        for item in cast:
            if isinstance(item, dict) and set(item) == {"key", "value"}:
                pairs.append((item["key"], item["value"]))  # a Parquet map read as structs
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                pairs.append((None, item))  # a bare person URL, nm id or name
    else:
        problems[column] = f"expected a dict or list, got {type(cast).__name__}"
        return {}, 0
    actors: dict[str, str] = {}
    bad: list[str] = []
    without_ids = 0
    for name, link in pairs:
        link_text = _text(link) or ""
        person_id = parse_person_id(link_text) if link_text else None
        if name is None:
            if person_id is None:
                without_ids += 1  # a name alone
                continue
            name = person_code(person_id)
        elif (
            link_text
            and (person_id is None or not PERSON_URL_RE.match(link_text))
            and not re.fullmatch(r"nm\d{7,9}", link_text)
        ):
            bad.append(str(name))
            continue
        elif person_id is None:
            without_ids += 1
            continue
        actors[str(name)] = person_url(person_id)
    if bad:
        problems[column] = f"not IMDb person URLs for {', '.join(bad[:3])}"
    return actors, without_ids


def _read_texts(path: Path, errors: list[RowError]) -> dict[int, str]:
    frame = _read_csv(path, POSTERS_COLUMNS)
    texts: dict[int, str] = {}
    for number, row in enumerate(frame.to_dict("records"), start=1):
        problems: dict[str, str] = {}
        title_id = _parse_id(row["id"], problems)
        if title_id is not None and title_id in texts:
            problems["id"] = f"duplicate id {title_id}"
        if problems:
            errors.append(_row_error(path.name, number, problems))
            continue
        texts[title_id] = row["text"]
    return texts


def _row_error(file: str, number: int, problems: dict[str, str]) -> RowError:
    return RowError(file, number, tuple(problems), "; ".join(f"{c}: {m}" for c, m in problems.items()))
