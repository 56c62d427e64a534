"""IMDb-format dataset files for the sample server's generated titles and persons.

``title.basics``, ``name.basics`` and ``title.principals`` are written in IMDb's exact
layout (tab-separated, no quoting, ``\\N`` for null, rows sorted by id, gzip), from the
same generators that render the sample pages, so the dataset index built from them
agrees with what the crawl finds on the pages.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..base.files import atomic_open
from ..imdb.dataset_index import NAME_BASICS_COLUMNS, PRINCIPALS_COLUMNS, TITLE_BASICS_COLUMNS
from ..imdb.ids import parse_person_id

NULL = "\\N"
KNOWN_FOR_LIMIT = 4  # IMDb lists up to four knownForTitles

Generator = Callable[[int, int], "dict | None"]


@dataclass
class SampleDatasets:
    """The files written and how many rows each holds."""

    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def _text(value) -> str:
    """A TSV cell: null as \\N; tabs and newlines (which the format cannot hold) as spaces."""
    if value is None or value == "":
        return NULL
    return " ".join(str(value).replace("\t", " ").splitlines())


def _year(value) -> int | None:
    try:
        return int(str(value)[:4]) if value not in (None, "") else None
    except ValueError:
        return None


def _profession_code(text: str) -> str:
    """'Actress' / 'Music Department' / 'actor' -> IMDb's 'actress' / 'music_department' / 'actor'."""
    return "_".join(str(text).strip().lower().split())


def _exists(item: dict | None) -> bool:
    if not item:
        return False
    status = item.get("status")
    return item.get("exists", True) is not False and status in (None, "ok")


def _person_ids_of(title: dict) -> list[int]:
    """The title's actors, top-billed first, as person ids.

    Reads the sample generator's ``cast`` ([(person_id, name), ...]) or a record's
    ``actors`` ({name: person URL}).
    """
    if title.get("cast") is not None:
        references = [entry[0] if isinstance(entry, (tuple, list)) else entry for entry in title["cast"]]
    else:
        actors = title.get("actors") or {}
        references = list(actors.values()) if isinstance(actors, dict) else list(actors)
    ids = []
    for reference in references:
        person_id = reference if isinstance(reference, int) else parse_person_id(str(reference))
        if person_id is not None and person_id not in ids:
            ids.append(person_id)
    return ids


def title_basics_row(title_id: int, title: dict) -> tuple[str, ...]:
    genres = title.get("genres") or []
    return (
        f"tt{title_id:07d}",
        _text(title.get("title_type") or "movie"),
        _text(title.get("title") or title.get("original_title")),
        _text(title.get("original_title") or title.get("title")),
        "1" if title.get("is_adult") else "0",
        _text(_year(title.get("year"))),
        NULL,
        _text(title.get("runtime_minutes")),
        ",".join(genres) if genres else NULL,
    )


def name_basics_row(person_id: int, person: dict, known_for: list[int]) -> tuple[str, ...]:
    professions = [_profession_code(p) for p in person.get("professions") or []]
    if person.get("is_actor") and not {"actor", "actress"} & set(professions):
        professions.insert(0, "actor")
    return (
        f"nm{person_id:07d}",
        _text(person.get("name")),
        _text(_year(person.get("birth_year"))),
        _text(_year(person.get("death_year"))),
        ",".join(professions) if professions else NULL,
        ",".join(f"tt{t:07d}" for t in known_for[:KNOWN_FOR_LIMIT]) or NULL,
    )


def principal_row(title_id: int, ordering: int, person_id: int, person: dict | None) -> tuple[str, ...]:
    professions = {_profession_code(p) for p in (person or {}).get("professions") or []}
    category = "actress" if "actress" in professions and "actor" not in professions else "actor"
    characters = (person or {}).get("character")
    return (
        f"tt{title_id:07d}",
        str(ordering),
        f"nm{person_id:07d}",
        category,
        NULL,
        json.dumps([characters], ensure_ascii=False) if characters else NULL,
    )


def _default_generators() -> tuple[Generator, Generator]:
    from .content import sample_person, sample_title

    return sample_title, sample_person


def write_sample_datasets(
    dest_dir: Path | str,
    title_ids: Iterable[int],
    person_ids: Iterable[int] = (),
    seed: int = 0,
    *,
    compress: bool = True,
    sample_title: Generator | None = None,
    sample_person: Generator | None = None,
) -> SampleDatasets:
    """Write the three dataset files for the sample titles and persons that exist.

    Persons billed in a written title are included even when outside ``person_ids``,
    so every principal has a name row, as in IMDb's files.
    """
    if sample_title is None or sample_person is None:
        default_title, default_person = _default_generators()
        sample_title = sample_title or default_title
        sample_person = sample_person or default_person
    titles = {i: t for i in sorted(set(title_ids)) if _exists(t := sample_title(i, seed))}
    cast = {i: _person_ids_of(t) for i, t in titles.items()}
    wanted_persons = set(person_ids) | {p for ids in cast.values() for p in ids}
    persons = {i: p for i in sorted(wanted_persons) if _exists(p := sample_person(i, seed))}
    known_for: dict[int, list[int]] = {}
    for title_id, ids in cast.items():
        for person_id in ids:
            known_for.setdefault(person_id, []).append(title_id)

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    suffix = ".tsv.gz" if compress else ".tsv"
    result = SampleDatasets()
    tables = {
        "title.basics": (TITLE_BASICS_COLUMNS, (title_basics_row(i, t) for i, t in titles.items())),
        "name.basics": (NAME_BASICS_COLUMNS, (name_basics_row(i, p, known_for.get(i, [])) for i, p in persons.items())),
        "title.principals": (
            PRINCIPALS_COLUMNS,
            (
                principal_row(title_id, ordering, person_id, persons.get(person_id))
                for title_id, ids in cast.items()
                for ordering, person_id in enumerate(ids, start=1)
            ),
        ),
    }
    for name, (header, rows) in tables.items():
        path = dest / f"{name}{suffix}"
        result.rows[name] = _write_tsv(path, header, rows, compress)
        result.files[name] = path
    return result


def _write_tsv(path: Path, header: tuple[str, ...], rows: Iterable[tuple[str, ...]], compress: bool) -> int:
    count = 0
    with atomic_open(path, "wb") as raw:
        # mtime=0: the same content gives the same bytes, so a re-generation looks unchanged.
        out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
        out.write(("\t".join(header) + "\n").encode())
        for row in rows:
            out.write(("\t".join(row) + "\n").encode())
            count += 1
        if compress:
            out.close()  # writes the gzip trailer; ``raw`` stays open
    return count
