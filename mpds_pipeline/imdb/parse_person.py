"""Person pages -> PersonRecord, for every layout era.

Next.js pages give the person object in ``__NEXT_DATA__``; classic desktop and mobile
pages are read from their markup, with fallbacks so that no era loses a record for want
of one selector. Where each field is in each layout: docs/parsing.md.
"""

from __future__ import annotations

import html
import re

from selectolax.lexbor import LexborHTMLParser

from . import ids
from .page_data import (
    NON_DATA_KEYS,
    classic_fragments,
    dig,
    find_objects_with,
    full_size_image,
    is_media_image,
    meta_content,
    saved_copy_image,
    text_of,
)
from .person_photos import photos_from_html, photos_of
from .records import Era, ParseError, PersonRecord

ACTOR_PROFESSIONS = frozenset({"actor", "actress"})

# Displayed profession names whose category id is not just the name in snake case.
_PROFESSION_IDS = {
    "miscellaneous crew": "miscellaneous",
    "camera and electrical department": "camera_department",
    "make-up department": "make_up_department",
    "costume and wardrobe department": "costume_department",
    "script and continuity department": "script_department",
}
_ANCHOR_RE = re.compile(r"#([a-z_]+)$")
_TITLE_TAG_RE = re.compile(rb"<title[^>]*>([^<]*)</title>", re.I)
# "Bruce Willis - IMDb", "IMDb: Bruce Willis", "John Smith (I) - IMDb" -> the name alone.
_SITE_NAME_RE = re.compile(r"^IMDb\s*[:-]\s*|\s+-\s+IMDb(?:Pro)?$")
# A person's sub-pages name themselves: "Tom Cruise - Biography", "Biography for Tom Cruise".
_SUBPAGE_NAME_RE = re.compile(
    r"\s+-\s+(?:Biography|Bio|Photos|Photo Gallery|Awards|News|Filmography|Trivia|Quotes)$|"
    r"^(?:Biography|Photos|Awards|News|Filmography|Trivia|Quotes) (?:for|of)\s+",
    re.I,
)
# Filmography sections (2006-2010 ``<div class="filmo"><h5><a name="actor">``, 2010-12
# ``<div id="filmo-head-Actor">``, 2013+ ``id="filmo-head-actor"``) and the "Jump to" links.
_FILMO_HEAD_RE = re.compile(rb'id="filmo-head-([A-Za-z_ -]+)"')
_FILMO_ANCHOR_RE = re.compile(rb'<div class="filmo[^"]*">\s*<h5[^>]*>\s*<a\b[^>]*?\bname="([A-Za-z_ -]+)"')
_JUMP_LINK_RE = re.compile(rb'<a\b[^>]*href="#([A-Za-z_-]+)"')
# Only the filmography's own jump line: a /bio page's "Jump to: Overview | Mini Bio" is none.
_JUMP_BLOCK_RE = re.compile(rb"Jump to filmography as:?(.{0,3000}?)</div>", re.S)
# Filmography sections that are not professions.
_NOT_PROFESSIONS = frozenset(
    {"indev", "in_development", "thanks", "self", "archive", "archive_footage", "archive_sound", "headshot"}
)
_DISAMBIGUATION_RE = re.compile(r"\s*\([IVXL]+\)$")
_IMAGE_SRC_RE = re.compile(rb"<link[^>]*rel=[\"']image_src[\"'][^>]*>", re.I)
_HREF_RE = re.compile(rb"href=[\"']([^\"']*)[\"']", re.I)


def profession_id(text: str) -> str | None:
    """'Miscellaneous Crew' -> 'miscellaneous', 'Music Department' -> 'music_department'."""
    words = " ".join(text.replace("\xa0", " ").split()).lower()
    if not words:
        return None
    return _PROFESSION_IDS.get(words) or re.sub(r"[\s\-]+", "_", words)


def _record(person_id: int, name: str, image: str | None, professions: list[str], era: Era):
    unique = list(dict.fromkeys(p for p in professions if p))
    return PersonRecord(
        id=person_id,
        name=name,
        image_url=full_size_image(image) if is_media_image(image) else None,
        professions=unique,
        is_actor=any(p in ACTOR_PROFESSIONS for p in unique),
        era=era,
    )


def person_from_next_data(data: dict, url_hint: str | None = None) -> PersonRecord | ParseError:
    """A PersonRecord from a decoded ``__NEXT_DATA__`` object."""
    page_props = dig(data, "props", "pageProps")
    root = page_props if isinstance(page_props, dict) else data
    code = text_of(dig(root, "nmconst")) or text_of(dig(data, "query", "nmconst"))
    objects = [
        obj
        for obj in find_objects_with(root, "nameText", NON_DATA_KEYS)
        if code is None or obj.get("id") in (None, code)
    ]
    if not objects:
        return ParseError("no person object (nameText) in __NEXT_DATA__")
    person_id = ids.parse_person_id(code or objects[0].get("id") or url_hint or "")
    if person_id is None:
        return ParseError("no person id (nmconst) in __NEXT_DATA__ or the page URL")
    name = next((n for o in objects if (n := text_of(dig(o, "nameText", "text")))), None)
    if name is None:
        return ParseError("person object has no nameText.text")
    image = next((u for o in objects if (u := dig(o, "primaryImage", "url"))), None)
    professions: list[str] = []
    for obj in objects:
        for item in obj.get("primaryProfessions") or []:
            category = text_of(dig(item, "category", "id"))
            if category:
                professions.append(category.lower())
        if professions:
            break
    if not professions:
        for obj in objects:
            for item in obj.get("professions") or []:
                text = text_of(dig(item, "profession", "text"))
                if text:
                    professions.append(profession_id(text))
            if professions:
                break
    era = "next-2025" if any("knownForV2" in o for o in objects) else "next"
    record = _record(person_id, name, image if isinstance(image, str) else None, professions, era)
    record.photos = photos_of(objects)
    return record


def _classic_name(tree, page: bytes, json_ld: dict | None) -> tuple[str | None, bool]:
    """(name, is the mobile layout), from the first signal that has one, newest era first.

    Never the first ``<h1>`` of the page, which on some pages is an IMDbPro advert: only
    the person header in each era's markup, then JSON-LD, ``og:title`` and ``<title>``."""
    for selector in ("h1.header span[itemprop=name]", "h1.header span.itemprop"):  # 2013-2019
        if name := _node_text(tree.css_first(selector), deep=True):
            return name, False
    if name := _node_text(tree.css_first("#name-overview h1"), deep=True):  # 2016-17 mobile
        return name, True
    # Sub-pages (/bio) of 2006-2016 link the name from their header or title block.
    for selector in ("#tn15title h1 a.main", "h1.header a.main", ".subpage_title_block [itemprop=name] a"):
        if name := _node_text(tree.css_first(selector), deep=True):
            return name, False
    # 2010-13: itemprop=name on the header itself (or, 2010-11, no itemprop); 2006-10:
    # #tn15title. Their child spans hold "(I)" or years, not the name, so only the
    # header's own text counts.
    for selector in ("h1[itemprop=name]", "#tn15title h1", "h1.header"):
        if name := _node_text(tree.css_first(selector), deep=False):
            return name, False
    for candidate in ((json_ld or {}).get("name"), meta_content(page, "og:title"), _title_tag(page)):
        if isinstance(candidate, str) and (name := _without_site_name(candidate)):
            return name, False
    return None, False


def _node_text(node, *, deep: bool) -> str | None:
    if node is None:
        return None
    return text_of(" ".join(node.text(deep=deep).replace("\xa0", " ").split()))


def _title_tag(page: bytes) -> str | None:
    for match in _TITLE_TAG_RE.finditer(page[:200_000]):  # the <head>; later ones are SVG titles
        if text := text_of(match.group(1).decode("utf-8", "replace")):
            return html.unescape(text)
    return None


def _without_site_name(text: str) -> str | None:
    words = " ".join(text.replace("\xa0", " ").split())
    if words.lower() == "imdb":
        return None
    return text_of(_DISAMBIGUATION_RE.sub("", _SUBPAGE_NAME_RE.sub("", _SITE_NAME_RE.sub("", words))))


def _job_title_professions(tree) -> list[str]:
    """The job titles under the name, whatever element carries them: 2013-19
    ``#name-job-categories a > span[itemprop=jobTitle]``, 2011-12 ``div.infobar >
    a[itemprop=jobTitle]``, 2010-11 plain ``div.infobar`` links to the filmography
    sections. A link's ``#anchor`` is the category id; else the text is."""
    header = tree.css_first("#name-job-categories") or tree.css_first("div.infobar")
    if header is None:
        return [p for node in tree.css("[itemprop=jobTitle]") if (p := profession_id(node.text()))]
    professions: list[str] = []
    for node in header.css("a, [itemprop=jobTitle]"):
        if node.tag != "a":
            if _inside_link(node, header):
                continue  # its link was read
            professions.append(profession_id(node.text()))
            continue
        anchor = _ANCHOR_RE.search(node.attributes.get("href") or "")
        if anchor:
            professions.append(anchor.group(1).lower())
        elif node.attributes.get("itemprop") == "jobTitle" or node.css_first("[itemprop=jobTitle]") is not None:
            professions.append(profession_id(node.text()))
        # Any other link (a title, the resume) is no job title.
    return [p for p in professions if p]


def _inside_link(node, stop) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop and parent.mem_id != stop.mem_id:
        if parent.tag == "a":
            return True
        parent = parent.parent
    return False


def _section_profession(anchor: bytes) -> str | None:
    """'Actor' -> 'actor', 'Miscellaneous_Crew' -> 'miscellaneous'; None for a section
    that is no profession (Self, Thanks, Archive Footage, In Development)."""
    found = profession_id(anchor.decode("ascii", "replace").replace("_", " ").replace("-", " "))
    return found if found not in _NOT_PROFESSIONS else None


def _filmography_professions(page: bytes) -> list[str]:
    """The person's filmography sections, in page order: all that pages of 2006-2010
    show of what a person does."""
    for pattern in (_FILMO_HEAD_RE, _FILMO_ANCHOR_RE):
        found = [m.group(1) for m in pattern.finditer(page)]
        if found:
            return [p for anchor in found if (p := _section_profession(anchor))]
    block = _JUMP_BLOCK_RE.search(page)
    if block:
        return [p for m in _JUMP_LINK_RE.finditer(block.group(1)) if (p := _section_profession(m.group(1)))]
    return []


def _classic_professions(tree, page: bytes, mobile: bool, json_ld: dict | None) -> list[str]:
    professions = _job_title_professions(tree)
    if not professions and mobile:
        line = tree.css_first("#name-overview h1 + p")
        if line is not None:
            professions = [p for part in line.text().split("|") if (p := profession_id(part))]
    if not professions and json_ld:
        titles = json_ld.get("jobTitle")
        titles = [titles] if isinstance(titles, str) else titles or []
        professions = [p for t in titles if isinstance(t, str) and (p := profession_id(t))]
    if not professions:
        professions = _filmography_professions(page)
    return professions


# The primary photo's element, newest era first: 2013-19 (desktop and mobile), then
# 2010-13 (td#img_primary without the id), then 2006-10 (the "headshot" link).
_PRIMARY_IMAGE_SELECTORS = ("img#name-poster", "#img_primary img", "a[name=headshot] img")


def _classic_image(tree, page: bytes, json_ld: dict | None, subpage: bool) -> str | None:
    """The primary photo: its element, else JSON-LD, else ``og:image``/``image_src``.

    A browser "save page as" copy rewrites img src to a local path; og:image and JSON-LD
    keep the remote URL, and the local file is named after the image key (which gives
    the URL when nothing else does). The page-wide tags count only when the page shows
    a primary photo (or JSON-LD), or is a sub-page (``/bio``) whose only photo is
    ``og:image``: on a main page without a photo they may name the IMDb logo or another
    picture. Old URL forms (``._V1._SY317_.jpg``) are made full size by _record."""
    img = next((node for selector in _PRIMARY_IMAGE_SELECTORS if (node := tree.css_first(selector)) is not None), None)
    shows_photo = img is not None or bool(json_ld) or subpage
    src = img.attributes.get("src") if img is not None else None
    for candidate in (
        src,
        (json_ld or {}).get("image"),
        meta_content(page, "og:image") if shows_photo else None,
        _image_src_link(page) if shows_photo else None,
        saved_copy_image(src),
    ):
        if isinstance(candidate, str) and is_media_image(candidate):
            return candidate
    return None


def _image_src_link(page: bytes) -> str | None:
    """``<link rel="image_src">`` (in the head, outside the fragments the tree holds)."""
    for tag in _IMAGE_SRC_RE.finditer(page):
        href = _HREF_RE.search(tag.group(0))
        url = html.unescape(href.group(1).decode("utf-8", "replace")) if href else None
        if is_media_image(url):
            return url
    return None


_SUBPAGE_URL_RE = re.compile(r"/name/nm\d+/(?:bio|mediaindex|awards|otherworks|publicity|trivia)")
_NAME_SUBPAGE_RE = re.compile(rb"/name/(nm\d{7,9})/(?:bio|mediaindex|filmoyear|news|awards|board|publicity|otherworks)")


def _person_id(page: bytes, json_ld: dict | None, url_hint: str | None) -> int | None:
    found = ids.parse_person_id(url_hint or "") or ids.parse_person_id((json_ld or {}).get("url") or "")
    if found is None:
        codes = [m.group(1) for m in _NAME_SUBPAGE_RE.finditer(page)]
        if codes:
            found = ids.parse_person_id(max(set(codes), key=codes.count).decode())
    return found


def person_from_classic_html(page: bytes, json_ld: dict | None, url_hint: str | None) -> PersonRecord | ParseError:
    """A PersonRecord from a classic desktop or mobile person page."""
    person_id = _person_id(page, json_ld, url_hint)
    if person_id is None:
        return ParseError("no person id: no canonical/og:url link, JSON-LD url or links to the page's own sub-pages")
    tree = LexborHTMLParser(classic_fragments(page).decode("utf-8", "replace"))
    name, mobile = _classic_name(tree, page, json_ld)
    if name is None:
        return ParseError(
            "no person name: no name header (h1.header, h1[itemprop=name], #name-overview h1, "
            "#tn15title h1), JSON-LD name, og:title or <title>"
        )
    era = "mobile" if mobile else ("classic-jsonld" if json_ld else "tn15" if b'id="tn15title"' in page else "classic")
    # A sub-page says so in its URL or, without one, in its title ("… - Biography").
    titles = (meta_content(page, "og:title"), _title_tag(page))
    subpage = bool(url_hint and _SUBPAGE_URL_RE.search(url_hint)) or any(
        _SUBPAGE_NAME_RE.search(" ".join(_SITE_NAME_RE.sub("", t).split())) for t in titles if t
    )
    record = _record(
        person_id,
        " ".join(name.split()),
        _classic_image(tree, page, json_ld, subpage),
        _classic_professions(tree, page, mobile, json_ld),
        era,
    )
    # Pages of 2006-2012 link the primary photo like a strip photo (/media/rm…/nm…).
    record.photos = [photo for photo in photos_from_html(page, person_id) if photo.url != record.image_url]
    return record
