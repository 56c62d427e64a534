"""A person's photos beyond the primary image, and who is in each of them.

It reads the photo strip of every layout era (Next.js image nodes, classic and mobile
strips, saved copies of pages), stores every URL at full size, and keeps the caption and
tagged people that tell who is in a photo. Where the photos are in each era:
docs/parsing.md and docs/curation.md.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final, Literal

from . import ids
from .page_data import (
    NON_DATA_KEYS,
    dig,
    find_next_data,
    find_objects_with,
    full_size_image,
    is_media_image,
    saved_copy_image,
    text_of,
)
from .records import GALLERY, STRIP, PersonPhoto, PhotoSource

# Who a photo shows, as far as its tags or caption say (``photo_subject``).
PhotoSubject = Literal["alone", "with_others", "not_named", "uncaptioned"]
ALONE: Final = "alone"  # this person and nobody else
WITH_OTHERS: Final = "with_others"  # this person among others
NOT_NAMED: Final = "not_named"  # other people only
UNCAPTIONED: Final = "uncaptioned"  # no caption and no tags: only a face count can tell


_LINK_IMG_RE = re.compile(rb"<a\b([^>]*)>\s*<img\b([^>]*)>", re.I)
_ATTR_RE = re.compile(rb"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
# Attributes that may hold the thumbnail's URL, best first (lazy-load ones before src).
_URL_ATTRS = ("loadlate", "data-src-x2", "data-src", "src", "srcset")
# Words that end the people part of a caption ("X in Title (Year)", "X at an event").
_CONTEXT_RE = re.compile(r"\s+(?:in|at|on|during|attends?|arrives?|for|from|as|photographed)\s+")
_CAPTION_PREFIX_RE = re.compile(r"^(?:still|photo|picture|portrait)\s+of\s+")


# --- who is in a photo ----------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def caption_subject(caption: str, name: str) -> str:
    """What a caption says about ``name``: ALONE ("X", "X in Title (Year)", "Still of X
    in …", "X at an event for …"), WITH_OTHERS ("X and Y in …", "A, X and B", "Y with X"),
    or NOT_NAMED (the caption names other people only)."""
    text, wanted = _fold(caption), _fold(name)
    if not wanted or not re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text):
        return NOT_NAMED
    people = _CONTEXT_RE.split(_CAPTION_PREFIX_RE.sub("", text), maxsplit=1)[0]
    people = re.sub(r"\(\d{4}\)", "", people).strip(" .;:-")
    return ALONE if people == wanted else WITH_OTHERS


def photo_subject(photo: PersonPhoto, person_id: int, name: str | None) -> PhotoSubject:
    """Tags decide when the page gives them; else the caption; else UNCAPTIONED (only a
    face count can tell, later)."""
    if photo.tagged_ids:
        tagged = set(photo.tagged_ids)
        if tagged == {person_id}:
            return ALONE
        return WITH_OTHERS if person_id in tagged else NOT_NAMED
    if photo.caption and name:
        return caption_subject(photo.caption, name)
    return UNCAPTIONED


def solo_photo_count(photos: list[PersonPhoto], person_id: int, name: str | None) -> int:
    """Photos whose tags or caption show this person alone (the gallery-fetch rule)."""
    return sum(photo_subject(p, person_id, name) == ALONE for p in photos)


# --- Next.js / API image nodes ---------------------------------------------------------------


def photos_from_next_data(data: object, source: PhotoSource = STRIP) -> list[PersonPhoto]:
    """Every ``images.edges[].node`` photo at the shallowest depth that has any, in order
    (a gallery page or an image API answer, whose wrapper objects vary)."""
    return photos_of(find_objects_with(data, "images", NON_DATA_KEYS), source)


def photos_of(objects: list[dict], source: PhotoSource = STRIP) -> list[PersonPhoto]:
    """The ``images.edges[].node`` photos of the given objects (a person page's person
    objects: a deeper search would find the images of other titles and people)."""
    photos: list[PersonPhoto] = []
    for holder in objects:
        for edge in dig(holder, "images", "edges") or []:
            photo = _photo_from_node(dig(edge, "node"), source)
            if photo is not None:
                photos.append(photo)
    return _unique(photos)


def _photo_from_node(node: object, source: str) -> PersonPhoto | None:
    if not isinstance(node, dict):
        return None
    url = node.get("url")
    if not isinstance(url, str) or not is_media_image(url):
        return None
    caption = dig(node, "caption", "plainText") if isinstance(node.get("caption"), dict) else node.get("caption")
    names = node.get("names")
    tagged = None
    if isinstance(names, list):
        tagged = [pid for item in names if (pid := ids.parse_person_id(text_of(dig(item, "id")) or "")) is not None]
    return PersonPhoto(
        url=full_size_image(url),
        caption=text_of(caption),
        width=_positive_int(node.get("width")),
        height=_positive_int(node.get("height")),
        tagged_ids=tagged,
        source=source,
    )


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# --- classic and mobile markup -----------------------------------------------------------


def photos_from_html(page: bytes, person_id: int, source: PhotoSource = STRIP) -> list[PersonPhoto]:
    """The photo links of a classic or mobile person page (or gallery page) of ``person_id``.

    Only links to this person's media viewer count: the primary image (``#name-poster``)
    and sidebar galleries of other pages are left out."""
    code = ids.person_code(person_id).encode()
    photos: list[PersonPhoto] = []
    for match in _LINK_IMG_RE.finditer(page):
        link, img = _attributes(match.group(1)), _attributes(match.group(2))
        href = link.get("href", "")
        if not _is_own_media_link(href, code.decode()) or img.get("id") == "name-poster":
            continue
        url = _thumbnail_url(img)
        if url is None:
            continue
        caption = text_of(img.get("title")) or text_of(img.get("alt"))
        photos.append(PersonPhoto(url=full_size_image(url), caption=caption, source=source))
    return _unique(photos)


def _attributes(raw: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, double, single in _ATTR_RE.findall(raw):
        key = name.decode("ascii", "replace").lower()
        if key not in found:
            value = double if double or not single else single
            found[key] = html.unescape(value.decode("utf-8", "replace"))
    return found


def _is_own_media_link(href: str, code: str) -> bool:
    return (f"/name/{code}/mediaviewer/" in href) or bool(re.search(rf"/media/rm\d+/{code}\b", href))


def _thumbnail_url(img: dict[str, str]) -> str | None:
    values = [img[a] for a in _URL_ATTRS if a in img] + [v for k, v in img.items() if k not in _URL_ATTRS]
    for value in values:
        first = value.split()[0] if value.strip() else ""
        if is_media_image(first):
            return first
    # A browser-saved copy: every URL was rewritten to a local file named after the token.
    for value in values:
        if url := saved_copy_image(value):
            return url
    return None


def _unique(photos: list[PersonPhoto]) -> list[PersonPhoto]:
    seen: set[str] = set()
    kept = []
    for photo in photos:
        if photo.url not in seen:
            seen.add(photo.url)
            kept.append(photo)
    return kept


# --- the gallery page ------------------------------------------------------------------


def gallery_photos(page: bytes, person_id: int) -> list[PersonPhoto]:
    """The photos of ``/name/nm…/mediaindex`` in any era (Next.js data, IMDb's image API
    JSON, or classic markup), marked as gallery photos."""
    stripped = page.lstrip()
    if stripped.startswith((b"{", b"[")):
        import orjson

        try:
            return photos_from_next_data(orjson.loads(stripped), GALLERY)
        except orjson.JSONDecodeError:
            return []
    data = find_next_data(page)
    if data is not None:
        return photos_from_next_data(data, GALLERY)
    return photos_from_html(page, person_id, GALLERY)


def add_gallery_photos(record, page: bytes) -> int:
    """Append a gallery page's photos that the person page did not already have; returns
    how many were added."""
    known = {photo.url for photo in record.photos}
    if record.image_url:
        known.add(record.image_url)
    added = [photo for photo in gallery_photos(page, record.id) if photo.url not in known]
    record.photos.extend(added)
    return len(added)
