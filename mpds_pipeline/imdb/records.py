"""Typed records that the parsers produce and the crawl stores.

These are the contracts between layers: parsers fill them, the crawl writes them to
Parquet, curation reads them. Field names match the Parquet columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Final, Literal, get_args

# The page layout a record was parsed from (see parse_title.py and parse_person.py), or
# "release" for a movie read from a released MPDS meta.csv (curate/rehydrate.py), "omdb"
# for a title no page described, built from OMDb's answer (sources/omdb.py).
# "tn15": the 2006-2010 design (its main column is ``div#tn15``); "combined": the
# ``/title/ttN/combined`` view of that design, served until about 2016.
Era = Literal[
    "tn15",
    "combined",
    "classic",
    "classic-jsonld",
    "next",
    "next-urql",
    "next-2025",
    "mobile",
    "release",
    "omdb",
    "unknown",
]
# What one attempted id ended in (classify.py decides it); exactly one per id.
# "uncaptured": no archive asked (Common Crawl, Wayback) holds a usable capture of the
# page; not final (a later crawl may capture it) and never "missing" (IMDb may have it).
FetchStatus = Literal["ok", "missing", "redirect", "blocked", "failed", "uncaptured"]
UNCAPTURED: Final = "uncaptured"  # given by the archive sources, never by a live answer
FETCH_STATUSES: tuple[FetchStatus, ...] = get_args(FetchStatus)
# After these an id is not fetched again; "blocked" and "failed" are retried by a rerun.
FINAL_STATUSES: frozenset[FetchStatus] = frozenset({"ok", "missing", "redirect"})
# Where an archived page came from: IMDb itself, or an archive's capture of it.
PageSource = Literal["live", "common_crawl", "wayback"]
PAGE_SOURCES: tuple[PageSource, ...] = get_args(PageSource)
# Where a person photo came from: the person page's strip, or /name/nm…/mediaindex.
PhotoSource = Literal["strip", "gallery"]
STRIP: Final = "strip"
GALLERY: Final = "gallery"


@dataclass
class TitleRecord:
    id: int
    title: str | None
    original_title: str | None
    title_type: str | None
    year: int | None
    genres: list[str] = field(default_factory=list)
    # Ordered name -> person URL (https://www.imdb.com/name/nm0000206), top-billed first.
    actors: dict[str, str] = field(default_factory=dict)
    poster_url: str | None = None
    synopsis: str | None = None
    certificate: str | None = None
    is_adult: bool = False
    era: Era = "unknown"
    # field -> the source that gave it ("index", "page", "omdb"; sources/field_order.py);
    # empty for a record straight from a parser, before the merge.
    field_sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": "title", **asdict(self)}


@dataclass
class PersonPhoto:
    """One photo of a person's photo strip or gallery (not the primary image).

    ``url`` is the full-size original (the ``._V1_`` rule, as for posters). ``width`` and
    ``height`` are the original's when the page data gives them (Next.js pages), never a
    thumbnail's. ``tagged_ids`` are the person ids IMDb tagged in the image (2025 image
    nodes' ``names[]``); None when the page says nothing about tags.
    """

    url: str
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    tagged_ids: list[int] | None = None
    source: PhotoSource = "strip"


@dataclass
class PersonRecord:
    id: int
    name: str | None
    image_url: str | None
    professions: list[str] = field(default_factory=list)
    is_actor: bool = False
    era: Era = "unknown"
    photos: list[PersonPhoto] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": "person", **asdict(self)}


@dataclass
class ParseError:
    """A page that could not be turned into a record; ``error`` names what was missing."""

    error: str
    path: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error}
