"""Finding the data objects inside an IMDb page, fast.

Next.js pages carry their data in ``__NEXT_DATA__``, classic pages may carry JSON-LD.
Both scripts are located without building a DOM, and the title and person objects are
found by their keys rather than by a fixed path, because IMDb moved them between
layouts. See docs/parsing.md.
"""

from __future__ import annotations

import codecs
import html
import re

import orjson

_NEXT_DATA_MARK = b'id="__NEXT_DATA__"'
_SCRIPT_END = b"</script>"
_JSON_LD_RE = re.compile(rb"<script[^>]*type=[\"']application/ld\+json[\"'][^>]*>(.*?)</script>", re.S | re.I)
_CANONICAL_RE = re.compile(rb"<link[^>]*rel=[\"']canonical[\"'][^>]*>", re.I)
_META_RE_CACHE: dict[bytes, re.Pattern[bytes]] = {}
_HREF_RE = re.compile(rb"href=[\"']([^\"']*)[\"']", re.I)
_CONTENT_RE = re.compile(rb"content=[\"']([^\"']*)[\"']", re.I)
# pageProps entries that never hold the title/person objects; skipping them saves
# walking thousands of translation strings and ad placements.
NON_DATA_KEYS = frozenset({"translationContext", "cmsContext", "requestContext", "fetchState"})
# How deep the key search descends: the title objects sit at depth 2-5 of pageProps.
_MAX_SEARCH_DEPTH = 8


_CHARSET_RE = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)
# How far into a page its charset declaration may sit (it belongs in the <head>).
_CHARSET_SCAN = 4096


def as_utf8(page: bytes) -> bytes:
    """The page in UTF-8: pages up to 2009-10 declare ``iso-8859-1``, which is read as
    windows-1252, as browsers do. A page that declares another charset but is valid
    UTF-8 with non-ASCII text (re-saved by a tool that kept the old ``<meta>``) stays."""
    match = _CHARSET_RE.search(page, 0, _CHARSET_SCAN)
    if match is None:
        return page
    try:
        codec = codecs.lookup(match.group(1).decode("ascii")).name
    except (LookupError, UnicodeDecodeError):
        return page
    if codec in ("utf-8", "ascii") or page.isascii():
        return page
    try:
        page.decode("utf-8")
        return page
    except UnicodeDecodeError:
        pass
    if codec == "iso8859-1":
        codec = "cp1252"
    return page.decode(codec, "replace").encode("utf-8")


def find_next_data(page: bytes) -> dict | None:
    """The decoded ``__NEXT_DATA__`` JSON, or None when absent or not valid JSON."""
    start = page.find(_NEXT_DATA_MARK)
    if start < 0:
        return None
    body_start = page.find(b">", start)
    body_end = page.find(_SCRIPT_END, body_start)
    if body_start < 0 or body_end < 0:
        return None
    try:
        data = orjson.loads(page[body_start + 1 : body_end])
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def next_data_span(page: bytes) -> tuple[int, int] | None:
    """Byte offsets of the whole ``<script id="__NEXT_DATA__">...</script>`` element."""
    mark = page.find(_NEXT_DATA_MARK)
    if mark < 0:
        return None
    start = page.rfind(b"<script", 0, mark)
    end = page.find(_SCRIPT_END, mark)
    if start < 0 or end < 0:
        return None
    return start, end + len(_SCRIPT_END)


def json_ld_elements(page: bytes) -> list[bytes]:
    """The raw ``<script type="application/ld+json">`` elements, in page order."""
    return [match.group(0) for match in _JSON_LD_RE.finditer(page)]


def find_json_ld(page: bytes) -> list[dict]:
    """Every decodable JSON-LD object in the page (lists are flattened)."""
    found: list[dict] = []
    for match in _JSON_LD_RE.finditer(page):
        try:
            data = orjson.loads(match.group(1))
        except orjson.JSONDecodeError:
            continue
        items = data if isinstance(data, list) else [data]
        found.extend(item for item in items if isinstance(item, dict))
    return found


def meta_tag(page: bytes, prop: str) -> bytes | None:
    """The whole ``<meta property|name=prop ...>`` tag, or None."""
    key = prop.encode()
    pattern = _META_RE_CACHE.get(key)
    if pattern is None:
        pattern = re.compile(rb"<meta[^>]*(?:property|name)=[\"']" + re.escape(key) + rb"[\"'][^>]*>", re.I)
        _META_RE_CACHE[key] = pattern
    match = pattern.search(page)
    return match.group(0) if match else None


def meta_content(page: bytes, prop: str) -> str | None:
    """The ``content`` of ``<meta property|name=prop>``, HTML-unescaped, or None."""
    tag = meta_tag(page, prop)
    if tag is None:
        return None
    match = _CONTENT_RE.search(tag)
    return html.unescape(match.group(1).decode("utf-8", "replace")) if match else None


def canonical_tag(page: bytes) -> bytes | None:
    match = _CANONICAL_RE.search(page)
    return match.group(0) if match else None


def canonical_url(page: bytes) -> str | None:
    """The page's own URL: ``<link rel=canonical>``, else ``og:url``."""
    tag = canonical_tag(page)
    if tag is not None:
        match = _HREF_RE.search(tag)
        if match:
            return match.group(1).decode("utf-8", "replace")
    return meta_content(page, "og:url")


def find_objects_with(data: object, key: str, skip: frozenset[str] = frozenset()) -> list[dict]:
    """The shallowest dicts that have ``key`` (all those at the first depth where any
    is found), breadth-first.

    Deeper matches are not wanted: a title object holds other titles (recommendations,
    the parent series) that must not be taken for it, and the page's own objects sit
    side by side at one depth (aboveTheFoldData/mainColumnData, or the urqlState
    entries). ``skip`` names keys not worth descending into (translations, ads).
    """
    level: list[object] = [data]
    for _ in range(_MAX_SEARCH_DEPTH):
        found: list[dict] = []
        next_level: list[object] = []
        for node in level:
            if isinstance(node, dict):
                if key in node:
                    found.append(node)
                    continue
                for name, value in node.items():
                    if isinstance(value, (dict, list)) and name not in skip:
                        next_level.append(value)
            elif isinstance(node, list):
                next_level.extend(v for v in node if isinstance(v, (dict, list)))
        if found or not next_level:
            return found
        level = next_level
    return []


def dig(data: object, *path: str | int) -> object:
    """``data[p0][p1]...`` or None when any step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[step] if isinstance(step, int) else data.get(step)
        if data is None:
            return None
    return data


def text_of(value: object) -> str | None:
    """A non-empty stripped string, else None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


# Today's image host. IMDb served the same ``/images/M/<key>`` images from these hosts
# before (2008-2014 and 2015-2019); records name today's host so that one image parsed
# from pages of different years is one URL.
CDN_IMAGE_BASE = "https://m.media-amazon.com/images/M/"
_LEGACY_IMAGE_HOST_RE = re.compile(
    r"^(?:https?:)?//(?:ia\.media-imdb\.com|i\.media-imdb\.com|images-na\.ssl-images-amazon\.com)/images/M/"
)
# A Wayback Machine capture rewrites every URL to its own copy ("…/web/2010…im_/http://…").
_WAYBACK_PREFIX_RE = re.compile(r"^(?:https?:)?(?://web\.archive\.org)?/web/\d+[a-z_]*/")
# A browser "save page as" copy names each image file after its key; older copies drop
# the ``@@._V1…`` tail, which base64 padding ('@' for '=') restores.
_SAVED_IMAGE_FILE_RE = re.compile(r"(MV5B[A-Za-z0-9+_-]+)(@*)((?:\._V1[^/\s\"']*)?)\.(?:jpg|jpeg|png)$", re.I)


def full_size_image(url: str | None) -> str | None:
    """IMDb image URL at full size: cut after ``._V1`` and append ``_.jpg``; legacy image
    hosts become today's (same key), an archive capture's URL the original.

    ``…@._V1_UY268_CR2,0,182,268_AL_.jpg`` -> ``…@._V1_.jpg``. URLs without ``._V1``
    are returned unchanged (they already are the original).
    """
    if not url:
        return None
    url = _LEGACY_IMAGE_HOST_RE.sub(CDN_IMAGE_BASE, _WAYBACK_PREFIX_RE.sub("", url, count=1), count=1)
    cut = url.find("._V1")
    if cut < 0:
        return url
    return url[: cut + 4] + "_.jpg"


def saved_copy_image(value: str | None) -> str | None:
    """The CDN URL of an image whose ``src`` a browser rewrote to a local file named
    after the image key (``Page_files/MV5B….jpg``), else None."""
    match = _SAVED_IMAGE_FILE_RE.search((value or "").split("?")[0])
    if match is None:
        return None
    key, padding, ops = match.group(1), match.group(2), match.group(3)
    if not padding:
        padding = "@" * (-len(key) % 4)
    return CDN_IMAGE_BASE + key + padding + (ops or "._V1_") + ".jpg"


def is_media_image(url: str | None) -> bool:
    """True for a real picture on IMDb's image CDN (``/images/M/...``), not a logo or
    placeholder (``/images/G/...``, ``nopicture``) and not a browser-saved local path.
    Protocol-relative URLs and a Wayback capture's ``/web/<time>/http://…`` count."""
    if not url or not (url.startswith(("http://", "https://", "//")) or _WAYBACK_PREFIX_RE.match(url)):
        return False
    return "/images/M/" in url


# Where the classic pages keep what the parsers read: the title/name overview block and
# the cast table. Building a DOM for just these (10-40 KB) instead of the whole page
# (100-700 KB) makes classic parsing 3-5x faster. Pages of 2006-2010 (``#tn15``, and the
# ``/combined`` view to 2016) spread their fields over the whole main column: all of it.
_OVERVIEW_STARTS = (b'id="title-overview-widget', b'id="name-overview', b'id="img_primary"')
_OVERVIEW_ENDS = (b'id="sidebar"', b'id="maindetails_center_bottom"', b'id="titleCast"')
_OVERVIEW_MAX = 120_000
# cast_list (2013-2018) and cast (2006-2012, /combined).
_CAST_TABLE = b'<table class="cast'


def classic_fragments(page: bytes) -> bytes:
    """The overview block and the cast table of a classic page, concatenated; the whole
    page when the overview block cannot be found."""
    starts = [i for m in _OVERVIEW_STARTS if (i := page.find(m)) >= 0]
    if not starts:
        return page
    start = page.rfind(b"<", 0, min(starts))
    ends = [i for m in _OVERVIEW_ENDS if (i := page.find(m, start)) >= 0]
    # End before the tag holding the end marker, never inside it: a cut tag would
    # swallow the cast table appended after it.
    end = page.rfind(b"<", start, min(ends)) if ends else -1
    if end <= start:
        end = page.rfind(b"<", start, start + _OVERVIEW_MAX)
    parts = [page[start:end]]
    cast_start = page.find(_CAST_TABLE, start)
    if cast_start >= 0:
        cast_end = page.find(b"</table>", cast_start)
        parts.append(page[cast_start : cast_end + 8 if cast_end >= 0 else None])
    return b"\n".join(parts)


_BLOCK_END = "</div>"
_LABEL_RE_CACHE: dict[str, re.Pattern[str]] = {}


def labelled_block(page_text: str, *labels: str) -> str | None:
    """The markup after the first ``<h4|h5>Label:</h4|h5>`` heading of ``labels`` (in the
    order given) up to the end of its block: how pages of 2006-2012 present each
    field ("Genre:", "Plot:", "Certification:"), and the storyline of later pages."""
    for label in labels:
        pattern = _LABEL_RE_CACHE.get(label)
        if pattern is None:
            pattern = re.compile(r"<h[45][^>]*>\s*(?:<a[^>]*>)?" + re.escape(label) + r"\s*(?:</a>)?\s*:", re.I)
            _LABEL_RE_CACHE[label] = pattern
        match = pattern.search(page_text)
        if match is None:
            continue
        heading_end = page_text.find(">", page_text.find("</h", match.end()))
        start = heading_end + 1 if heading_end >= 0 else match.end()
        # Content in an inner div (/combined's div.info-content) ends at the block's own
        # closing tag, the second one.
        end = page_text.find(_BLOCK_END, start)
        inner = page_text.find("<div", start)
        if 0 <= inner < end:
            end = page_text.find(_BLOCK_END, end + len(_BLOCK_END))
        return page_text[start : end if end >= 0 else None]
    return None


_TAG_RE = re.compile(r"<[^>]+>")


def markup_text(markup: str) -> str:
    """The text of an HTML fragment: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(_TAG_RE.sub(" ", markup)).replace("\xa0", " ").split())
