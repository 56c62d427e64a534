"""Wikimedia Commons file metadata: licence, author, credit, size, hash, thumbnails.

Files are read in batches through the MediaWiki layer; each licence is kept only when
its family is on the allowlist, and every refusal is counted. Thumbnails are asked only
at Wikimedia's standard widths. See docs/licence-clean.md.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Final

from ..base.progress import Progress
from ..net.client import PoliteClient
from .mediawiki import ApiCounters, api_get

# Commons' $wgThumbnailSteps (mediawiki.org, Manual:$wgThumbnailSteps): the only widths asked.
STANDARD_THUMB_WIDTHS: Final = (20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920, 3840)
DEFAULT_THUMB_WIDTH: Final = 1280
IMAGEINFO_BATCH: Final = 50
IIPROP: Final = "url|size|sha1|mime|extmetadata|timestamp"
EXTMETADATA_FIELDS: Final = (
    "LicenseShortName|License|LicenseUrl|Artist|Credit|AttributionRequired|UsageTerms|Restrictions|Copyrighted"
)
# Licence families (``licence_family``) and the default allowlist of the licence-clean edition.
PUBLIC_DOMAIN: Final = "public-domain"
CC0: Final = "cc0"
CC_BY: Final = "cc-by"
CC_BY_SA: Final = "cc-by-sa"
DEFAULT_ALLOWLIST: Final = (PUBLIC_DOMAIN, CC0, CC_BY, CC_BY_SA)
# Why a file is not kept (counted); KEPT otherwise.
KEPT: Final = "kept"
MISSING_FILE: Final = "missing_file"
NO_LICENCE: Final = "no_licence_metadata"
NOT_ALLOWLISTED: Final = "licence_not_allowlisted"
NOT_AN_IMAGE: Final = "not_an_image"
IMAGE_MIMES: Final = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff")

COMMONS_FILE_COLUMNS = [
    "file_title",
    "source_page",
    "image_url",
    "thumb_url",
    "thumb_width",
    "width",
    "height",
    "size",
    "sha1",
    "mime",
    "licence",
    "licence_family",
    "licence_url",
    "artist",
    "credit",
    "attribution_required",
    "usage_terms",
    "restrictions",
    "attribution",
    "decision",
]


def check_thumb_width(width: int) -> int:
    if width not in STANDARD_THUMB_WIDTHS:
        raise ValueError(
            f"thumbnail width {width} is not one of Wikimedia's standard widths {STANDARD_THUMB_WIDTHS}: "
            "other widths make Commons render and store a thumbnail for us alone"
        )
    return width


def licence_family(short_name: str | None, code: str | None = None, url: str | None = None) -> str | None:
    """``public-domain``, ``cc0``, ``cc-by``, ``cc-by-sa``, another ``cc-…`` family, or
    None when the metadata names no licence we can tell."""
    texts = " ".join(t for t in (short_name, code, url) if t).lower()
    if not texts.strip():
        return None
    if re.search(r"\bcc0\b|cc-zero|publicdomain/zero", texts):
        return CC0
    if re.search(r"public domain|\bpd\b|\bpd-|publicdomain/mark", texts):
        return PUBLIC_DOMAIN
    match = re.search(r"\bcc[ -]((?:by)(?:[ -](?:nc|nd|sa))*)", texts) or re.search(
        r"creativecommons\.org/licenses/((?:by)(?:-(?:nc|nd|sa))*)/", texts
    )
    if match:
        return "cc-" + match.group(1).replace(" ", "-")
    return "other:" + (short_name or code or url or "").strip()[:60]


class _TextParser(HTMLParser):
    """Text of an HTML fragment; list items and line breaks become '; '."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("li", "br", "p", "div"):
            self.parts.append("; ")

    def handle_data(self, data):
        self.parts.append(data)


def html_to_text(value: str | None) -> str | None:
    """Artist and Credit come as HTML: their text, whitespace collapsed."""
    if value is None:
        return None
    parser = _TextParser()
    parser.feed(html.unescape(value) if "<" not in value else value)
    parser.close()
    text = re.sub(r"\s+", " ", "".join(parser.parts))
    text = re.sub(r"(\s*;\s*)+", "; ", text).strip(" ;")
    return text or None


def _meta(ext: dict, key: str) -> str | None:
    value = (ext.get(key) or {}).get("value")
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1", "yes")


@dataclass
class CommonsFile:
    file_title: str  # "File:…", as the API names it
    source_page: str | None = None
    image_url: str | None = None
    thumb_url: str | None = None
    thumb_width: int | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    sha1: str | None = None
    mime: str | None = None
    licence: str | None = None
    licence_family: str | None = None
    licence_url: str | None = None
    artist: str | None = None
    credit: str | None = None
    attribution_required: bool | None = None
    usage_terms: str | None = None
    restrictions: str | None = None
    attribution: str | None = None
    decision: str = KEPT

    @property
    def download_url(self) -> str | None:
        """The standard-width thumbnail when the original is wider, else the original."""
        return self.thumb_url or self.image_url

    def row(self) -> dict:
        return asdict(self)


def attribution_text(file: CommonsFile) -> str:
    """Title, author, source, licence: the attribution Commons' reuse guide asks for."""
    name = file.file_title.removeprefix("File:")
    author = file.artist or "unknown author"
    parts = [f'"{name}" by {author}']
    if file.credit and file.credit != file.artist:
        parts.append(f"credit: {file.credit}")
    licence = file.licence or "no licence stated"
    parts.append(f"{licence} ({file.licence_url})" if file.licence_url else licence)
    parts.append(f"via Wikimedia Commons: {file.source_page}" if file.source_page else "via Wikimedia Commons")
    return ", ".join(parts)


def parse_page(page: dict, allowlist: Iterable[str] = DEFAULT_ALLOWLIST, thumb_width: int | None = None) -> CommonsFile:
    """One page of an ``imageinfo`` answer (formatversion 2, or the 1 format's dict values)."""
    info = (page.get("imageinfo") or [{}])[0]
    file = CommonsFile(file_title=page.get("title") or "")
    # A file asked of another wiki reads "missing" there with imagerepository "shared": it exists.
    if not info or (page.get("missing") is not None and not page.get("imagerepository")) or page.get("invalid"):
        file.decision = MISSING_FILE
        return file
    ext = info.get("extmetadata") or {}
    file.source_page = info.get("descriptionurl")
    file.image_url = info.get("url")
    file.width, file.height, file.size = info.get("width"), info.get("height"), info.get("size")
    file.sha1, file.mime = info.get("sha1"), info.get("mime")
    thumb = info.get("thumburl")
    if thumb and thumb_width and (file.width or 0) > thumb_width:
        file.thumb_url, file.thumb_width = thumb, info.get("thumbwidth") or thumb_width
    file.licence = _meta(ext, "LicenseShortName")
    code = _meta(ext, "License")
    file.licence_url = _meta(ext, "LicenseUrl")
    file.licence_family = licence_family(file.licence, code, file.licence_url)
    file.artist = html_to_text(_meta(ext, "Artist"))
    file.credit = html_to_text(_meta(ext, "Credit"))
    file.attribution_required = _bool(_meta(ext, "AttributionRequired"))
    file.usage_terms = _meta(ext, "UsageTerms")
    file.restrictions = _meta(ext, "Restrictions")
    file.attribution = attribution_text(file)
    allowed = set(allowlist)
    if file.licence_family is None:
        file.decision = NO_LICENCE
    elif file.licence_family not in allowed:
        file.decision = NOT_ALLOWLISTED
    elif file.mime and file.mime not in IMAGE_MIMES:
        file.decision = NOT_AN_IMAGE
    return file


def parse_imageinfo(
    data: dict, allowlist: Iterable[str] = DEFAULT_ALLOWLIST, thumb_width: int | None = None
) -> dict[str, CommonsFile]:
    """File title -> file of an ``imageinfo`` answer; titles asked in another spelling
    (``normalized``) are listed under what was asked too."""
    query = data.get("query") or {}
    pages = query.get("pages") or []
    if isinstance(pages, dict):
        pages = list(pages.values())
    files = {}
    for page in pages:
        file = parse_page(page, allowlist, thumb_width)
        files[file.file_title] = file
    for pair in query.get("normalized") or []:
        if pair.get("to") in files:
            files[pair["from"]] = files[pair["to"]]
    return files


def file_title(name: str) -> str:
    return "File:" + name.removeprefix("File:").replace("_", " ")


@dataclass
class CommonsResult:
    files: dict[str, CommonsFile] = field(default_factory=dict)  # file title -> file
    category_files: dict[str, list[str]] = field(default_factory=dict)  # category -> file titles
    api: ApiCounters = field(default_factory=ApiCounters)

    def decisions(self) -> dict[str, int]:
        return dict(Counter(f.decision for f in self.files.values()))


async def read_files(
    client: PoliteClient,
    api_endpoint: str,
    names: Iterable[str],
    *,
    allowlist: Iterable[str] = DEFAULT_ALLOWLIST,
    thumb_width: int = DEFAULT_THUMB_WIDTH,
    result: CommonsResult | None = None,
    maxlag_min_wait_s: float = 5.0,
    log: Callable[[str], None] | None = None,
) -> CommonsResult:
    """Metadata of the named files, 50 a request."""
    check_thumb_width(thumb_width)
    result = result or CommonsResult()
    titles = [t for t in dict.fromkeys(file_title(n) for n in names) if t not in result.files]
    allow = tuple(allowlist)
    progress = Progress("commons files", len(titles), log, unit="files")
    for start in range(0, len(titles), IMAGEINFO_BATCH):
        batch = titles[start : start + IMAGEINFO_BATCH]
        data = await api_get(
            client,
            api_endpoint,
            {
                "action": "query",
                "prop": "imageinfo",
                "titles": "|".join(batch),
                "iiprop": IIPROP,
                "iiurlwidth": thumb_width,
                "iiextmetadatafilter": EXTMETADATA_FIELDS,
                "iiextmetadatalanguage": "en",
            },
            min_wait_s=maxlag_min_wait_s,
            counters=result.api,
            log=log,
        )
        found = parse_imageinfo(data, allow, thumb_width)
        for title in batch:
            result.files[title] = found.get(title) or CommonsFile(title, decision=MISSING_FILE)
        progress.update(len(batch))
    progress.close()
    return result


async def read_category(
    client: PoliteClient,
    api_endpoint: str,
    category: str,
    *,
    limit: int = 10,
    allowlist: Iterable[str] = DEFAULT_ALLOWLIST,
    thumb_width: int = DEFAULT_THUMB_WIDTH,
    result: CommonsResult | None = None,
    maxlag_min_wait_s: float = 5.0,
    log: Callable[[str], None] | None = None,
) -> CommonsResult:
    """Up to ``limit`` files of a category (no subcategories), with their metadata, in one call."""
    check_thumb_width(thumb_width)
    result = result or CommonsResult()
    name = "Category:" + category.removeprefix("Category:")
    data = await api_get(
        client,
        api_endpoint,
        {
            "action": "query",
            "generator": "categorymembers",
            "gcmtitle": name,
            "gcmtype": "file",
            "gcmlimit": min(limit, IMAGEINFO_BATCH),
            "prop": "imageinfo",
            "iiprop": IIPROP,
            "iiurlwidth": thumb_width,
            "iiextmetadatafilter": EXTMETADATA_FIELDS,
            "iiextmetadatalanguage": "en",
        },
        min_wait_s=maxlag_min_wait_s,
        counters=result.api,
        log=log,
    )
    found = parse_imageinfo(data, tuple(allowlist), thumb_width)
    result.files.update(found)
    result.category_files[category.removeprefix("Category:")] = sorted(found)[:limit]
    return result
