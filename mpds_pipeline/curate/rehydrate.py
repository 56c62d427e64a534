"""Rebuild the ``movies`` input from a released MPDS ``meta.csv`` (and ``posters.csv``).

IMDb now blocks scrapers, so many users rebuild the dataset from the paper's CSVs
instead of crawling. This reads that release format into the same DataFrame shape as
the crawled title records, so the same filters, downloads and export apply. A bad row
is reported (row number, columns at fault) and skipped; good rows are never lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from ..imdb.ids import parse_title_id
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
    movies: pd.DataFrame  # columns MOVIE_COLUMNS, is_adult False, era "release"
    texts: dict[int, str]  # posters.csv id -> text (empty when no posters.csv)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0

    def metadata(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "movies": len(self.movies),
            "texts": len(self.texts),
            "bad_rows": len(self.errors),
            "errors_preview": "\n".join(str(e) for e in self.errors[:20]),
        }


def load_release(meta_csv: Path, posters_csv: Path | None = None) -> Rehydrated:
    """Read a release; bad rows go to ``errors``, missing columns raise ReleaseFormatError."""
    meta = _read_csv(Path(meta_csv), META_COLUMNS)
    errors: list[RowError] = []
    movies: list[dict] = []
    seen: set[int] = set()
    for number, row in enumerate(meta.to_dict("records"), start=1):
        movie, problems = _parse_meta_row(row)
        if movie is not None and movie["id"] in seen:
            problems["id"] = f"duplicate id {movie['id']}"
        if problems:
            errors.append(_row_error(Path(meta_csv).name, number, problems))
            continue
        seen.add(movie["id"])
        movies.append(movie)
    texts: dict[int, str] = {}
    if posters_csv is not None:
        texts = _read_texts(Path(posters_csv), errors)
    return Rehydrated(
        movies=pd.DataFrame(movies, columns=list(MOVIE_COLUMNS)),
        texts=texts,
        errors=errors,
        rows_read=len(meta),
    )


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise ReleaseFormatError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ReleaseFormatError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReleaseFormatError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; "
            f"expected {', '.join(required)}, found {', '.join(map(str, frame.columns))}"
        )
    return frame


def _parse_meta_row(row: dict) -> tuple[dict | None, dict[str, str]]:
    problems: dict[str, str] = {}
    title_id = _parse_id(row["id"], problems)
    movie_url = row["movie-url"].strip()
    if not TITLE_URL_RE.match(movie_url):
        problems["movie-url"] = f"not an IMDb title URL: {movie_url!r}"
    elif title_id is not None and parse_title_id(movie_url) != title_id:
        problems["movie-url"] = f"{movie_url} is not title {title_id}"
    genres = _parse_cell(row["genres"], list, "genres", problems)
    if genres is not None and not all(isinstance(g, str) for g in genres):
        problems["genres"] = "genres must be strings"
    actors = _parse_cell(row["actors"], dict, "actors", problems)
    if actors is not None:
        bad = [n for n, u in actors.items() if not isinstance(u, str) or not PERSON_URL_RE.match(u.strip())]
        if bad:
            problems["actors"] = f"not IMDb person URLs for {', '.join(map(str, bad[:3]))}"
    poster_url = row["poster-url"].strip()
    if poster_url and not HTTP_URL_RE.match(poster_url):
        problems["poster-url"] = f"not an http(s) URL: {poster_url[:80]!r}"
    if problems:
        return ({"id": title_id} if title_id is not None else None), problems
    title = row["title"].strip() or None
    return {
        "id": title_id,
        "title": title,
        "original_title": title,
        "title_type": None,
        "year": None,
        "genres": [g.strip() for g in genres or [] if g.strip()],
        "actors": {str(n): u.strip() for n, u in (actors or {}).items()},
        "poster_url": poster_url or None,
        "synopsis": row["synopsis"].strip() or None,
        "certificate": None,
        "is_adult": False,
        "era": RELEASE_ERA,
    }, {}


def _parse_id(text: str, problems: dict[str, str]) -> int | None:
    text = (text or "").strip()
    if not text:
        problems["id"] = "missing id"
        return None
    try:
        value = int(text)
    except ValueError:
        problems["id"] = f"not an integer id: {text[:40]!r}"
        return None
    if value < 1:
        problems["id"] = f"ids are positive, got {value}"
        return None
    return value


def _parse_cell(text: str, kind: type, column: str, problems: dict[str, str]):
    if not text.strip():
        return kind()
    try:
        value = _decode_text(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        problems[column] = f"neither JSON nor a Python literal: {text[:60]!r}"
        return None
    if not isinstance(value, kind):
        problems[column] = f"expected a {kind.__name__}, got {type(value).__name__}"
        return None
    return value


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
