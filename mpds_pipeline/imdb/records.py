"""Typed records that the parsers produce and the crawl stores.

These are the contracts between layers: parsers fill them, the crawl writes them to
Parquet, curation reads them. Field names match the Parquet columns.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Era = Literal["classic", "classic-jsonld", "next", "next-urql", "next-2025", "mobile", "unknown"]
FetchStatus = Literal["ok", "missing", "redirect", "blocked", "failed"]
FETCH_STATUSES: tuple[str, ...] = ("ok", "missing", "redirect", "blocked", "failed")


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
    era: str = "unknown"

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
    source: str = "strip"  # "strip" (the person page) or "gallery" (/name/nm…/mediaindex)


@dataclass
class PersonRecord:
    id: int
    name: str | None
    image_url: str | None
    professions: list[str] = field(default_factory=list)
    is_actor: bool = False
    era: str = "unknown"
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
