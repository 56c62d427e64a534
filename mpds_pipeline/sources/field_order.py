"""Choosing among sources: which source gives each field of a title record.

``merge_title`` is the one rule: field by field, the first source in the configured
order with a usable value wins, and says which it was. Every stage that combines sources
calls it, so a setting changes the choice everywhere. See docs/sources-omdb.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

FieldSource = Literal["index", "page", "omdb"]
FIELD_SOURCES: tuple[FieldSource, ...] = get_args(FieldSource)
INDEX: Final = "index"
PAGE: Final = "page"
OMDB: Final = "omdb"

# The title record fields a source may give (TitleRecord's, less id and era).
MERGED_FIELDS: tuple[str, ...] = (
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
)
# A field true in any source is true (see the module docstring).
ANY_TRUE_FIELDS: frozenset[str] = frozenset({"is_adult"})

# The index is IMDb's own curated data, so it wins for what it holds; plots and posters
# only pages and OMDb have, and a page is the primary source for them.
DEFAULT_FIELD_ORDER: dict[str, tuple[FieldSource, ...]] = {
    "title": (INDEX, PAGE, OMDB),
    "original_title": (INDEX, PAGE, OMDB),
    "title_type": (INDEX, PAGE, OMDB),
    "year": (INDEX, PAGE, OMDB),
    "genres": (INDEX, PAGE, OMDB),
    "actors": (INDEX, PAGE, OMDB),
    "poster_url": (PAGE, OMDB),
    "synopsis": (PAGE, OMDB),
    "certificate": (PAGE, OMDB),
    "is_adult": (INDEX, PAGE, OMDB),
}
FIELD_ORDER_ENV = "MPDS_FIELD_ORDER"


class FieldOrderError(ValueError):
    """A field order names a field or a source that does not exist."""


def field_order(overrides: Mapping[str, Any] | str | None = None) -> dict[str, tuple[FieldSource, ...]]:
    """The default order with ``overrides`` applied: a mapping field -> sources (a list
    or a comma string), or text like ``"poster_url=omdb,page;synopsis=page"`` (the form
    of ``MPDS_FIELD_ORDER``). A field left out keeps its default; a field given no
    source takes nothing from any source."""
    if overrides is None or overrides == "":
        return dict(DEFAULT_FIELD_ORDER)
    if isinstance(overrides, str):
        overrides = _parse_text(overrides)
    order = dict(DEFAULT_FIELD_ORDER)
    for name, sources in overrides.items():
        if name not in MERGED_FIELDS:
            raise FieldOrderError(f"field order: unknown field {name!r}; fields are {', '.join(MERGED_FIELDS)}")
        if isinstance(sources, str):
            sources = [s for s in (part.strip() for part in sources.split(",")) if s]
        unknown = [s for s in sources if s not in FIELD_SOURCES]
        if unknown:
            raise FieldOrderError(
                f"field order for {name}: unknown source(s) {', '.join(map(repr, unknown))}; "
                f"sources are {', '.join(FIELD_SOURCES)}"
            )
        if len(set(sources)) != len(sources):
            raise FieldOrderError(f"field order for {name}: a source is named twice in {list(sources)}")
        order[name] = tuple(sources)
    return order


def _parse_text(text: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, sources = part.partition("=")
        if not sep:
            raise FieldOrderError(f"field order: {part!r} is not FIELD=SOURCE,SOURCE (e.g. poster_url=page,omdb)")
        parsed[name.strip()] = sources
    return parsed


def usable(value: Any) -> bool:
    """Whether a source's value counts (see the module docstring)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple, dict, set)):
        return bool(value)
    return True


@dataclass
class MergedTitle:
    values: dict[str, Any]  # field -> the chosen value (None where no source had one)
    field_sources: dict[str, str]  # field -> the source that gave it (fields nobody gave are absent)


def merge_title(
    candidates: Mapping[str, Mapping[str, Any] | None],
    order: Mapping[str, tuple[str, ...]] | None = None,
) -> MergedTitle:
    """One title's fields from ``candidates`` (source -> that source's fields; a source
    with nothing on this title is absent or None), by ``order`` (default
    DEFAULT_FIELD_ORDER)."""
    order = order or DEFAULT_FIELD_ORDER
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in MERGED_FIELDS:
        ranked = [(s, candidates.get(s)) for s in order.get(name, ())]
        ranked = [(s, fields[name]) for s, fields in ranked if fields is not None and name in fields]
        if name in ANY_TRUE_FIELDS:
            saying = [s for s, value in ranked if value is True or (value is not None and bool(value))]
            values[name] = bool(saying)
            if saying:
                sources[name] = saying[0]
            elif ranked:
                sources[name] = ranked[0][0]
            continue
        values[name] = None
        for source, value in ranked:
            if usable(value):
                values[name], sources[name] = value, source
                break
    return MergedTitle(values, sources)


@dataclass
class MergeCounts:
    """How many records took each field from each source (for metadata)."""

    fields_by_source: Counter = field(default_factory=Counter)  # (field, source) -> records

    def add(self, merged: MergedTitle) -> None:
        for name, source in merged.field_sources.items():
            self.fields_by_source[(name, source)] += 1

    def table(self) -> list[dict]:
        return [
            {"field": name, "source": source, "records": n}
            for (name, source), n in sorted(self.fields_by_source.items())
        ]

    def filled_from(self, source: str, *, only_fields: tuple[str, ...] = MERGED_FIELDS) -> int:
        return sum(n for (name, s), n in self.fields_by_source.items() if s == source and name in only_fields)


def index_fields(index_dir, ids) -> dict[int, dict[str, Any]]:
    """What the IMDb datasets index says of each of ``ids``, as title record fields (an
    empty dict when there is no index). The cast is the title's actors, actresses and
    self-appearances among its principals, by billing order."""
    from ..imdb.dataset_index import has_index, index_title_cast, index_title_facts
    from ..imdb.ids import person_url

    if not has_index(index_dir):
        return {}
    ids = sorted(set(ids))
    facts = index_title_facts(index_dir, ids)
    cast = index_title_cast(index_dir, ids) if has_index(index_dir, "principals") else {}
    fields: dict[int, dict[str, Any]] = {}
    for title_id, fact in facts.items():
        actors = {
            name: person_url(pid)
            for pid, name, category in cast.get(title_id, [])
            if name and category in CAST_CATEGORIES
        }
        fields[title_id] = {
            "title": fact.get("primary_title"),
            "original_title": fact.get("original_title"),
            "title_type": fact.get("title_type"),
            "year": fact.get("start_year"),
            "genres": list(fact.get("genres") or []),
            "actors": actors,
            "is_adult": fact.get("is_adult"),
        }
    return fields


# The principals' categories that are on-screen cast.
CAST_CATEGORIES: frozenset[str] = frozenset({"actor", "actress", "self"})


def merge_title_records(
    pages: list,
    omdb: Mapping[int, Mapping[str, Any]],
    index: Mapping[int, Mapping[str, Any]],
    order: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[list, MergeCounts]:
    """Title records from parsed pages (``TitleRecord``), OMDb's fields and the index's
    fields per id, each field by ``order``. A record exists for every id a page or OMDb
    describes; the index alone makes none (it has no poster or plot). Sorted by id."""
    from dataclasses import asdict

    from ..imdb.records import TitleRecord

    by_id = {record.id: record for record in pages}
    counts = MergeCounts()
    merged_records = []
    for title_id in sorted(set(by_id) | set(omdb)):
        page = by_id.get(title_id)
        merged = merge_title(
            {PAGE: asdict(page) if page else None, OMDB: omdb.get(title_id), INDEX: index.get(title_id)}, order
        )
        counts.add(merged)
        values = merged.values
        merged_records.append(
            TitleRecord(
                id=title_id,
                title=values["title"],
                original_title=values["original_title"],
                title_type=values["title_type"],
                year=int(values["year"]) if values["year"] is not None else None,
                genres=list(values["genres"] or []),
                actors=dict(values["actors"] or {}),
                poster_url=values["poster_url"],
                synopsis=values["synopsis"],
                certificate=values["certificate"],
                is_adult=bool(values["is_adult"]),
                era=page.era if page else "omdb",
                field_sources=merged.field_sources,
            )
        )
    return merged_records, counts
