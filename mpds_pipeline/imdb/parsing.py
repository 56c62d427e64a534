"""Entry points of the IMDb page parsers: one page in, one record (or ParseError) out.

``parse_page`` accepts a full HTML page of any layout era, the raw ``__NEXT_DATA__``
JSON of a page, or the reduced data-only document made by ``extract_data_scripts``, and
never raises: anything it cannot read becomes a ParseError naming what was missing.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from .page_data import (
    as_utf8,
    canonical_tag,
    canonical_url,
    dig,
    find_json_ld,
    find_next_data,
    json_ld_elements,
    meta_tag,
    next_data_span,
)
from .parse_person import person_from_classic_html, person_from_next_data
from .parse_title import title_from_classic_html, title_from_next_data
from .records import ParseError, PersonRecord, TitleRecord

PageRecord = TitleRecord | PersonRecord | ParseError
KINDS = ("title", "person")

_BOM = b"\xef\xbb\xbf"
_PERSON_LD_TYPES = {"Person"}
# Meta tags kept in the data-only form: kind detection reads og:url/canonical, the
# no-poster check og:image, classic type detection og:title/og:type.
_KEPT_META = ("og:url", "og:image", "og:title", "og:type")


def parse_page(content: bytes | str, *, kind: str | None = None, path: str | None = None) -> PageRecord:
    """Parse one IMDb page; ``kind`` ('title'/'person') or None to detect it."""
    try:
        result = _parse(content, kind)
    except Exception as error:  # noqa: BLE001 - the contract is "never raises"
        result = ParseError(f"unreadable page ({type(error).__name__}: {error})")
    if isinstance(result, ParseError) and path is not None:
        result.path = path
    return result


def parse_file(path: str | Path) -> PageRecord:
    """Parse the page stored at ``path`` (HTML, data-only HTML or __NEXT_DATA__ JSON)."""
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        return ParseError(f"cannot read file: {error.strerror or error}", path=str(path))
    return parse_page(content, path=str(path))


def extract_data_scripts(html: bytes) -> bytes | None:
    """The page reduced to its data: the ``__NEXT_DATA__`` and JSON-LD scripts plus the
    canonical link and og meta tags (about a fifth of a 2022-2023 page).

    None for pages without ``__NEXT_DATA__``: classic pages keep their data in the
    markup (cast table, header), which only the full page holds.
    """
    if isinstance(html, str):
        html = html.encode("utf-8")
    span = next_data_span(html)
    if span is None:
        return None
    head = [tag for tag in [canonical_tag(html)] if tag is not None]
    head += [tag for prop in _KEPT_META if (tag := meta_tag(html, prop)) is not None]
    head += json_ld_elements(html)
    head.append(html[span[0] : span[1]])
    return b"<!DOCTYPE html><html><head>" + b"\n".join(head) + b"</head><body></body></html>"


def _parse(content: bytes | str, kind: str | None) -> PageRecord:
    if kind is not None and kind not in KINDS:
        return ParseError(f"unknown page kind {kind!r}: expected 'title' or 'person'")
    page = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    page = page.removeprefix(_BOM)
    # Look at the start only: stripping a 1 MB page would copy it.
    head = page[:1024].lstrip()
    if not head and not page.strip():
        return ParseError("empty page")
    if head.startswith((b"{", b"[")):
        return _parse_next_data_json(page, kind)
    return _parse_html(page, kind)


def _parse_next_data_json(page: bytes, kind: str | None) -> PageRecord:
    try:
        data = orjson.loads(page)
    except orjson.JSONDecodeError as error:
        return ParseError(f"__NEXT_DATA__ JSON is not valid JSON ({error})")
    if not isinstance(data, dict):
        return ParseError("__NEXT_DATA__ JSON is not an object")
    kind = kind or _kind_from_next_data(data)
    if kind is None:
        return ParseError("cannot tell title from person: no tconst/nmconst in __NEXT_DATA__")
    return _from_next_data(data, kind, None)


def _parse_html(page: bytes, kind: str | None) -> PageRecord:
    page = as_utf8(page)
    url = canonical_url(page)
    next_data = find_next_data(page)
    if next_data is None and b'id="__NEXT_DATA__"' in page:
        return ParseError("__NEXT_DATA__ script is truncated or not valid JSON")
    kind = kind or _kind_from_url(url)
    if kind is None and next_data is not None:
        kind = _kind_from_next_data(next_data)
    # Next.js pages carry everything in __NEXT_DATA__; JSON-LD is for classic pages.
    json_ld = find_json_ld(page) if next_data is None or kind is None else []
    kind = kind or _kind_from_json_ld(json_ld) or _kind_from_markup(page)
    if kind is None:
        return ParseError(
            "cannot tell title from person: no canonical/og:url, __NEXT_DATA__, JSON-LD or IMDb page markup"
        )
    if next_data is not None:
        return _from_next_data(next_data, kind, url)
    wanted = [ld for ld in json_ld if (ld.get("@type") in _PERSON_LD_TYPES) == (kind == "person")]
    main_ld = wanted[0] if wanted else None
    if kind == "person":
        return person_from_classic_html(page, main_ld, url)
    return title_from_classic_html(page, main_ld, url)


def _from_next_data(data: dict, kind: str, url: str | None) -> PageRecord:
    if kind == "person":
        return person_from_next_data(data, url)
    return title_from_next_data(data, url)


def _kind_from_url(url: str | None) -> str | None:
    if not url:
        return None
    if "/title/tt" in url:
        return "title"
    if "/name/nm" in url:
        return "person"
    return None


def _kind_from_next_data(data: dict) -> str | None:
    route = data.get("page") or ""
    if isinstance(route, str) and route.startswith("/title/"):
        return "title"
    if isinstance(route, str) and route.startswith("/name/"):
        return "person"
    if dig(data, "props", "pageProps", "tconst"):
        return "title"
    if dig(data, "props", "pageProps", "nmconst"):
        return "person"
    return None


def _kind_from_json_ld(json_ld: list[dict]) -> str | None:
    for item in json_ld:
        if item.get("@type") in _PERSON_LD_TYPES:
            return "person"
        if isinstance(item.get("url"), str) and "/title/tt" in item["url"]:
            return "title"
    return None


# Markup only one kind of page has, any era: 2013-2019 person/title headers, 2006-2010
# the person's "headshot" anchor and filmography blocks, the title's "poster" anchor and
# cast table.
_PERSON_MARKS = (b'id="name-poster"', b'id="name-job-categories"', b'<a name="headshot"', b'class="filmo"')
_TITLE_MARKS = (b'class="title_wrapper"', b'class="cast_list"', b'<a name="poster"', b'<table class="cast">')


def _kind_from_markup(page: bytes) -> str | None:
    if any(mark in page for mark in _PERSON_MARKS):
        return "person"
    if any(mark in page for mark in _TITLE_MARKS):
        return "title"
    return None
