"""Curation filters: which crawled titles become MPDS movies, which persons become actors.

Each rule records why a row dropped, so the assets can report drop counts as metadata.
Rules run in a fixed order and a row is charged to the first rule that drops it:
duplicate id, adult flag, adult genre, certificate blocklist, no poster, non-English.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa

from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from ..imdb.ids import parse_person_id
from .language import DEFAULT_LANGUAGES, decide_language

# The paper's R, Adult, PG-18 and their equivalents in other rating systems.
DEFAULT_CERTIFICATE_BLOCKLIST: tuple[str, ...] = ("R", "Adult", "PG-18", "NC-17", "X", "18", "R18", "VM18")
# Why a title is not an MPDS movie (a decision row's ``drop_reason``), in the order the rules apply.
MovieDropReason = Literal["duplicate", "adult_flag", "adult_genre", "certificate", "no_poster", "non_english"]
DROP_REASONS: tuple[MovieDropReason, ...] = get_args(MovieDropReason)
# The reasons that mark a title adult: the export's contract checks none of them is exported.
ADULT_REASONS: tuple[MovieDropReason, ...] = ("adult_flag", "adult_genre")
ACTOR_PROFESSIONS = frozenset({"actor", "actress"})


@dataclass(frozen=True)
class MovieFilterSettings:
    certificate_blocklist: tuple[str, ...] = setting(
        DEFAULT_CERTIFICATE_BLOCKLIST, "certificates whose movies are dropped (adult content)"
    )
    use_certificate_blocklist: bool = setting(True, "drop the movies with a certificate on certificate_blocklist")
    drop_non_english: bool = setting(True, "lingua language filter (off for a release: it is curated)")
    language_threshold: float = setting(0.5, "drop when lingua is at least this sure the original title is not English")
    language_min_words: int = 2
    languages: tuple[str, ...] = DEFAULT_LANGUAGES


@dataclass
class MovieSelection:
    movies: pd.DataFrame  # kept rows, input columns plus language, language_confidence
    decisions: pd.DataFrame  # one row per input row: id, kept, drop_reason, certificate, language, ...
    drop_counts: dict[str, int]  # reason -> rows dropped (every reason present, 0 when none)
    dropped_certificates: dict[str, int]  # certificate as written -> rows the blocklist dropped
    missing_counts: dict[str, int]  # kept rows missing "genre", "cast", "plot"
    input_rows: int = 0

    @property
    def kept(self) -> int:
        return len(self.movies)

    def metadata(self) -> dict[str, Any]:
        """Flat counts for asset metadata."""
        return {
            "input_rows": self.input_rows,
            "kept": self.kept,
            **{f"dropped_{k}": v for k, v in self.drop_counts.items()},
            **{f"kept_missing_{k}": v for k, v in self.missing_counts.items()},
            "dropped_certificates": dict(self.dropped_certificates),
        }


@dataclass
class ActorSelection:
    actors: pd.DataFrame  # id, name, image_url, professions
    movie_actor: pd.DataFrame  # movie_id, actor_id, billing_order (1 = top billed)
    counts: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {"actors": len(self.actors), "links": len(self.movie_actor), **self.counts}


# --- cell normalisers: Parquet, JSON and Python-literal cells all arrive here --------


def as_genre_list(value: Any) -> list[str]:
    """A genres cell (list, numpy array, JSON or Python-literal string, None) as a list."""
    value = _decode_text(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(g) for g in value if g is not None and str(g).strip()]


def as_actor_dict(value: Any) -> dict[str, str]:
    """An actors cell (dict, map as (name, url) pairs, list of structs, JSON) as an ordered dict."""
    value = _decode_text(value)
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if k is not None}
    result: dict[str, str] = {}
    for item in value:
        # A list<struct> from Parquet holds {"key": .., "value": ..} dicts; else (key, value) pairs.
        pair = list(item.values()) if isinstance(item, dict) else list(item)
        if len(pair) == 2 and pair[0] is not None:
            result[str(pair[0])] = "" if pair[1] is None else str(pair[1])
    return result


def as_text(value: Any) -> str | None:
    """A scalar text cell, with NaN/None/blank as None."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _decode_text(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] in "[{(":
            try:
                return json.loads(text)
            except ValueError:
                # The paper's files hold Python literals: ['Drama'] and {'A': 'url'}.
                return ast.literal_eval(text)
    return value


def normalize_certificate(certificate: str | None) -> str:
    """'United Kingdom:18' -> '18'; 'nc-17' -> 'NC17'; 'PG-18' -> 'PG18'."""
    text = (certificate or "").rsplit(":", 1)[-1]
    return "".join(ch for ch in text.upper() if ch.isalnum())


# --- movies ----------------------------------------------------------------------


def select_movies(
    titles: pd.DataFrame, settings: MovieFilterSettings | None = None, log: ProgressLog | None = None
) -> MovieSelection:
    """Apply the MPDS filters to title records; see the module docstring for the order.
    ``log`` gets progress lines (titles decided, kept and dropped so far)."""
    settings = settings or MovieFilterSettings()
    blocked = {normalize_certificate(c) for c in settings.certificate_blocklist}
    seen: set[int] = set()
    rows: list[dict[str, Any]] = []
    with Progress("movies: filtering", len(titles), log, unit="titles") as progress:
        for record in titles.to_dict("records"):
            row = _decide_title(record, seen, blocked, settings)
            rows.append(row)
            progress.update(status="kept" if row["kept"] else "dropped")
    decisions = pd.DataFrame(
        rows,
        columns=["id", "kept", "drop_reason", "certificate", "language", "language_confidence", "language_reason"],
    )
    kept_mask = decisions["kept"].to_numpy(dtype=bool) if len(decisions) else np.zeros(0, dtype=bool)
    movies = titles.reset_index(drop=True).loc[kept_mask].copy()
    movies["language"] = decisions.loc[kept_mask, "language"].to_numpy()
    movies["language_confidence"] = decisions.loc[kept_mask, "language_confidence"].to_numpy()
    movies = movies.reset_index(drop=True)

    reasons = Counter(r for r in decisions["drop_reason"] if r)
    certificates = Counter(c for c, r in zip(decisions["certificate"], decisions["drop_reason"]) if r == "certificate")
    return MovieSelection(
        movies=movies,
        decisions=decisions,
        drop_counts={reason: reasons.get(reason, 0) for reason in DROP_REASONS},
        dropped_certificates=dict(certificates),
        missing_counts=missing_field_counts(movies),
        input_rows=len(titles),
    )


def _decide_title(record: dict, seen: set[int], blocked: set[str], settings: MovieFilterSettings) -> dict:
    title_id = int(record["id"])
    certificate = as_text(record.get("certificate"))
    # One decisions-table row: every column, None until decided.
    row = dict.fromkeys(_DECISION_COLUMNS)
    row.update(id=title_id, kept=False, certificate=certificate)
    if title_id in seen:
        row["drop_reason"] = "duplicate"
        return row
    seen.add(title_id)
    genres = as_genre_list(record.get("genres"))
    if bool(record.get("is_adult") or False):
        row["drop_reason"] = "adult_flag"
    elif any(g.strip().lower() == "adult" for g in genres):
        row["drop_reason"] = "adult_genre"
    elif settings.use_certificate_blocklist and certificate and normalize_certificate(certificate) in blocked:
        row["drop_reason"] = "certificate"
    elif not as_text(record.get("poster_url")):
        row["drop_reason"] = "no_poster"
    if row["drop_reason"]:
        return row
    if settings.drop_non_english:
        text = as_text(record.get("original_title")) or as_text(record.get("title"))
        decision = decide_language(
            text,
            threshold=settings.language_threshold,
            min_words=settings.language_min_words,
            languages=settings.languages,
        )
        row.update(
            language=decision.language,
            language_confidence=round(decision.confidence, 4),
            language_reason=decision.reason,
        )
        if not decision.keep:
            row["drop_reason"] = "non_english"
            return row
    row["kept"] = True
    return row


def missing_field_counts(movies: pd.DataFrame) -> dict[str, int]:
    """Rows missing genre, cast or plot (the paper keeps them and reports the share)."""
    if movies.empty:
        return {"genre": 0, "cast": 0, "plot": 0}
    return {
        "genre": int(sum(not as_genre_list(v) for v in movies.get("genres", pd.Series([None] * len(movies))))),
        "cast": int(sum(not as_actor_dict(v) for v in movies.get("actors", pd.Series([None] * len(movies))))),
        "plot": int(sum(as_text(v) is None for v in movies.get("synopsis", pd.Series([None] * len(movies))))),
    }


# --- actors ----------------------------------------------------------------------


def select_actors(persons: pd.DataFrame, movies: pd.DataFrame) -> ActorSelection:
    """Persons who act and have an image; the cast of each movie linked to their ids."""
    counts = Counter()
    known: set[int] = set()
    actors = [row for record in persons.to_dict("records") if (row := _actor_row(record, known, counts))]
    links = list(_cast_links(movies, known, counts))
    return ActorSelection(
        actors=pd.DataFrame(actors, columns=["id", "name", "image_url", "professions"]),
        movie_actor=pd.DataFrame(links, columns=["movie_id", "actor_id", "billing_order"]),
        counts=_actor_counts(len(persons), counts),
    )


def _actor_row(record: dict, known: set[int], counts: Counter) -> dict | None:
    """The actors row of a person record, or None with its drop reason counted; a kept
    id joins ``known`` (a later record of it is a duplicate)."""
    person_id = int(record["id"])
    professions = [p.lower() for p in as_genre_list(record.get("professions"))]
    if person_id in known:
        counts["dropped_duplicate"] += 1
    elif not (ACTOR_PROFESSIONS & set(professions)):
        counts["dropped_not_actor"] += 1
    elif not as_text(record.get("image_url")):
        counts["dropped_no_image"] += 1
    else:
        known.add(person_id)
        return {
            "id": person_id,
            "name": as_text(record.get("name")),
            "image_url": as_text(record.get("image_url")),
            "professions": professions,
        }
    return None


def _actor_counts(input_persons: int, counts: Counter) -> dict[str, int]:
    reasons = ("dropped_duplicate", "dropped_not_actor", "dropped_no_image", "cast_without_actor_record")
    return {"input_persons": input_persons, **{k: counts.get(k, 0) for k in reasons}}


def _cast_links(movies: pd.DataFrame, actor_ids: Iterable[int], counts: Counter):
    return _cast_links_of(movies.to_dict("records"), set(actor_ids), counts)


def _cast_links_of(movies: Iterable[dict], known: set[int], counts: Counter):
    for record in movies:
        for order, url in enumerate(as_actor_dict(record.get("actors")).values(), start=1):
            person_id = parse_person_id(url)
            if person_id in known:
                yield {"movie_id": int(record["id"]), "actor_id": person_id, "billing_order": order}
            else:
                counts["cast_without_actor_record"] += 1


# --- the same rules, streamed partition by partition --------------------------------
#
# At full scale (a million crawled titles) the in-memory selections above hold every
# record as Python objects at once (about 3 KB per title). The functions below read one
# partition's records at a time and write kept rows as they go, so memory is bounded by
# the largest partition plus small per-id counters, whatever the number of partitions.

MOVIE_DECISIONS_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("kept", pa.bool_()),
        ("drop_reason", pa.string()),
        ("certificate", pa.string()),
        ("language", pa.string()),
        ("language_confidence", pa.float64()),
        ("language_reason", pa.string()),
    ]
)
_DECISION_COLUMNS: list[str] = MOVIE_DECISIONS_SCHEMA.names
ACTORS_SCHEMA = pa.schema(
    [("id", pa.int64()), ("name", pa.string()), ("image_url", pa.string()), ("professions", pa.list_(pa.string()))]
)
MOVIE_ACTOR_SCHEMA = pa.schema([("movie_id", pa.int64()), ("actor_id", pa.int64()), ("billing_order", pa.int64())])
PREVIEW_ROWS = 10
MOVIE_BATCH_ROWS = 20_000  # movies read per batch when linking casts


def movies_schema(titles: pa.Schema) -> pa.Schema:
    """The movies table: the title records' columns, then the language decision."""
    return titles.append(pa.field("language", pa.string())).append(pa.field("language_confidence", pa.float64()))


@dataclass
class StreamedMovieSelection:
    """What :func:`select_movie_files` wrote: counts and a preview, not the rows."""

    input_rows: int
    kept: int
    drop_counts: dict[str, int]
    dropped_certificates: dict[str, int]
    missing_counts: dict[str, int]
    preview: pd.DataFrame  # the first kept rows

    def metadata(self) -> dict[str, Any]:
        return {
            "input_rows": self.input_rows,
            "kept": self.kept,
            **{f"dropped_{k}": v for k, v in self.drop_counts.items()},
            **{f"kept_missing_{k}": v for k, v in self.missing_counts.items()},
            "dropped_certificates": dict(self.dropped_certificates),
        }


def select_movie_files(
    partitions: Iterable[pa.Table],
    schema: pa.Schema,
    movies_path: Path,
    decisions_path: Path,
    settings: MovieFilterSettings | None = None,
    *,
    total: int | None = None,
    log: ProgressLog | None = None,
) -> StreamedMovieSelection:
    """:func:`select_movies` over title records that arrive one partition (Arrow table) at
    a time (of ``schema``), each id once (``record_store.latest_partitions``); kept rows and every
    decision are written to ``movies_path`` and ``decisions_path`` as they are made.
    ``total``: the rows to come, for the progress lines' ETA."""
    from .store import TableWriter

    settings = settings or MovieFilterSettings()
    blocked = {normalize_certificate(c) for c in settings.certificate_blocklist}
    reasons: Counter = Counter()
    certificates: Counter = Counter()
    missing = {"genre": 0, "cast": 0, "plot": 0}
    preview: list[dict] = []
    input_rows = kept = 0
    with (
        Progress("movies: filtering", total, log, unit="titles") as progress,
        TableWriter(decisions_path, MOVIE_DECISIONS_SCHEMA) as decisions_out,
        TableWriter(movies_path, movies_schema(schema)) as movies_out,
    ):
        for table in partitions:
            rows = []
            for record in table.to_pylist():
                row = _decide_title(record, set(), blocked, settings)  # ids arrive once: no duplicate to find
                rows.append(row)
                progress.update(status="kept" if row["kept"] else "dropped")
                if row["kept"]:
                    missing["genre"] += not as_genre_list(record.get("genres"))
                    missing["cast"] += not as_actor_dict(record.get("actors"))
                    missing["plot"] += as_text(record.get("synopsis")) is None
                    if len(preview) < PREVIEW_ROWS:
                        preview.append(record)
                elif row["drop_reason"] == "certificate":
                    certificates[row["certificate"]] += 1
                if row["drop_reason"]:
                    reasons[row["drop_reason"]] += 1
            input_rows += len(rows)
            decisions = pa.Table.from_pylist(rows, schema=MOVIE_DECISIONS_SCHEMA)
            decisions_out.write(decisions)
            mask = decisions.column("kept")
            movies = table.filter(mask)
            movies = movies.append_column("language", decisions.column("language").filter(mask))
            movies = movies.append_column("language_confidence", decisions.column("language_confidence").filter(mask))
            movies_out.write(movies)
            kept += movies.num_rows
    preview_frame = pd.DataFrame(preview, columns=["id", "title", "year", "genres", "certificate"])
    return StreamedMovieSelection(
        input_rows=input_rows,
        kept=kept,
        drop_counts={reason: reasons.get(reason, 0) for reason in DROP_REASONS},
        dropped_certificates=dict(certificates),
        missing_counts=missing,
        preview=preview_frame,
    )


@dataclass
class StreamedActorSelection:
    """What :func:`select_actor_files` wrote: counts and a preview, not the rows."""

    actors: int
    links: int
    counts: dict[str, int]
    preview: pd.DataFrame

    def metadata(self) -> dict[str, Any]:
        return {"actors": self.actors, "links": self.links, **self.counts}


def select_actor_files(
    partitions: Iterable[pa.Table],
    movies_path: Path,
    actors_path: Path,
    movie_actor_path: Path,
    *,
    batch_rows: int = MOVIE_BATCH_ROWS,
) -> StreamedActorSelection:
    """:func:`select_actors` over person records that arrive one partition at a time,
    each id once, and the movies table read in batches; actors and cast links are
    written as they are found. Only the kept actors' ids stay in memory."""
    import pyarrow.parquet as pq

    from .store import TableWriter

    movies_path = Path(movies_path)
    if not movies_path.exists():
        raise FileNotFoundError(f"{movies_path} does not exist: materialise the asset that writes it first")
    counts: Counter = Counter()
    known: set[int] = set()
    preview: list[dict] = []
    input_persons = 0
    with TableWriter(actors_path, ACTORS_SCHEMA) as actors_out:
        for table in partitions:
            input_persons += table.num_rows
            rows = [row for record in table.to_pylist() if (row := _actor_row(record, known, counts))]
            preview.extend(rows[: PREVIEW_ROWS - len(preview)])
            actors_out.write(pa.Table.from_pylist(rows, schema=ACTORS_SCHEMA))
    links = 0
    with TableWriter(movie_actor_path, MOVIE_ACTOR_SCHEMA) as links_out:
        for batch in pq.ParquetFile(movies_path).iter_batches(batch_size=batch_rows, columns=["id", "actors"]):
            found = list(_cast_links_of(batch.to_pylist(), known, counts))
            links_out.write(pa.Table.from_pylist(found, schema=MOVIE_ACTOR_SCHEMA))
            links += len(found)
    return StreamedActorSelection(
        actors=len(known),
        links=links,
        counts=_actor_counts(input_persons, counts),
        preview=pd.DataFrame(preview, columns=["id", "name", "image_url", "professions"]),
    )
