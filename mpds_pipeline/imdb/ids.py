"""IMDb ids and URLs in the formats the MPDS paper released.

Titles: ``https://www.imdb.com/title/tt`` + id zero-padded to 7 digits (8 when larger).
Persons: ``https://www.imdb.com/name/nm`` + id zero-padded to 7 digits.
No trailing slash, as in the paper's CSVs.
"""

from __future__ import annotations

import re

from ..base.settings import env_str

DEFAULT_BASE_URL = "https://www.imdb.com"
# The crawl's page kinds: a person's photo gallery is archived beside the person pages.
GALLERY_KIND = "person_gallery"

_TITLE_RE = re.compile(r"tt(\d{7,9})")
_PERSON_RE = re.compile(r"nm(\d{7,9})")


def title_code(title_id: int) -> str:
    """133093 -> 'tt0133093'."""
    _check_id(title_id)
    return f"tt{title_id:07d}"


def person_code(person_id: int) -> str:
    """206 -> 'nm0000206'."""
    _check_id(person_id)
    return f"nm{person_id:07d}"


def title_url(title_id: int, base_url: str = DEFAULT_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/title/{title_code(title_id)}"


def person_url(person_id: int, base_url: str = DEFAULT_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/name/{person_code(person_id)}"


def parse_title_id(text: str) -> int | None:
    """The integer id of the first 'tt…' code in ``text`` (a code or a URL), else None."""
    match = _TITLE_RE.search(text or "")
    return int(match.group(1)) if match else None


def parse_person_id(text: str) -> int | None:
    """The integer id of the first 'nm…' code in ``text`` (a code or a URL), else None."""
    match = _PERSON_RE.search(text or "")
    return int(match.group(1)) if match else None


def gallery_url(person_id: int, base_url: str = DEFAULT_BASE_URL) -> str:
    """A person's photo gallery: ``…/name/nm0000206/mediaindex``."""
    return f"{person_url(person_id, base_url)}/mediaindex"


def url_for(kind: str, item_id: int, base_url: str = DEFAULT_BASE_URL) -> str:
    """The page URL of a 'title' or 'person' id, or of a person's gallery (GALLERY_KIND)."""
    if kind == "title":
        return title_url(item_id, base_url)
    if kind == "person":
        return person_url(item_id, base_url)
    if kind == GALLERY_KIND:
        return gallery_url(item_id, base_url)
    raise ValueError(f"unknown page kind {kind!r}: expected 'title', 'person' or {GALLERY_KIND!r}")


def _check_id(item_id: int) -> None:
    if not isinstance(item_id, int) or item_id < 1:
        raise ValueError(f"IMDb ids are positive integers, got {item_id!r}")


def configured_base_url() -> str:
    """``$MPDS_IMDB_BASE_URL`` (or the data directory's settings.env), else IMDb itself."""
    return env_str("MPDS_IMDB_BASE_URL", DEFAULT_BASE_URL)
