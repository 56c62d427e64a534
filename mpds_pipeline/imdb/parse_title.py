"""Title pages -> TitleRecord, for every layout era.

Two routes: Next.js pages (``__NEXT_DATA__`` JSON; 2022-2025, including the early-2022
``urqlState`` variant and the 2025 ``titleGenres``/``castV2`` shapes) and classic pages
(schema.org microdata, 2013-2018, some with a JSON-LD block), parsed with lexbor.

Actors: the main cast as the page bills it, top-billed first. Next.js pages give the
principal "Stars" (3-4) separately from the cast list, and on 2022 pages the cast list
after the first few is alphabetical, so the principal stars always go first, then the
cast list in its own order, without duplicates. At most ``MAX_ACTORS`` are kept: that is
the size of the classic page's "first billed only" cast box, Next.js main pages show 18
and reference pages the whole cast (hundreds for a series), so the cap keeps records
comparable across eras and the prompts short.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from selectolax.lexbor import LexborHTMLParser

from mpds_pipeline.imdb import ids
from mpds_pipeline.imdb.page_data import (
    NON_DATA_KEYS,
    classic_fragments,
    dig,
    find_objects_with,
    full_size_image,
    is_media_image,
    meta_content,
    text_of,
)
from mpds_pipeline.imdb.records import Era, ParseError, TitleRecord

MAX_ACTORS = 15

# Placeholders IMDb shows where a title has no plot; compared case-insensitively
# after trimming punctuation.
SYNOPSIS_PLACEHOLDERS = frozenset(
    {
        "add a plot",
        "add a plot in your language",
        "the plot is unknown",
        "plot is unknown",
        "plot unknown",
        "plot under wraps",
        "the plot is being kept under wraps",
        "know what this is about? be the first one to add a plot",
    }
)

# Classic pages name the type in words ("The Wire (TV Series 2002–2008)"); records use
# IMDb's own lower-camel ids, as Next.js pages do.
CLASSIC_TYPE_IDS = {
    "tv series": "tvSeries",
    "tv mini-series": "tvMiniSeries",
    "tv mini series": "tvMiniSeries",
    "tv movie": "tvMovie",
    "tv episode": "tvEpisode",
    "tv short": "tvShort",
    "tv special": "tvSpecial",
    "video": "video",
    "video game": "videoGame",
    "short": "short",
    "podcast series": "podcastSeries",
    "podcast episode": "podcastEpisode",
}
_OG_TYPE_IDS = {"video.movie": "movie", "video.tv_show": "tvSeries", "video.episode": "tvEpisode"}

# Cast groupings on 2025 reference pages are named in the page's language, so match
# the stable grouping ids as well as the English text.
_CAST_GROUPING_IDS = ("7caf7d16-5db9-4f4f-8864-d4c6e711c686",)
_STARS_GROUPING_IDS = ("7510356e-fde9-438e-b3ad-0099ba6bc8ce",)


def clean_synopsis(text: str | None) -> str | None:
    """The plot text, or None for empty text and IMDb's placeholders."""
    text = text_of(text)
    if text is None:
        return None
    key = text.lower().rstrip(" .!»").strip()
    if key in SYNOPSIS_PLACEHOLDERS or key.startswith("add a plot"):
        return None
    return text


# --- Next.js ---------------------------------------------------------------------------


def title_objects(data: dict, title_code: str | None) -> tuple[list[dict], bool]:
    """The page's own title objects (above-the-fold first) and whether they came from
    the early-2022 ``urqlState`` cache."""
    page_props = dig(data, "props", "pageProps")
    root = page_props if isinstance(page_props, dict) else data
    found = [
        obj
        for obj in find_objects_with(root, "titleText", NON_DATA_KEYS)
        if title_code is None or obj.get("id") in (None, title_code)
    ]
    from_urql = (
        isinstance(root, dict)
        and bool(root.get("urqlState"))
        and not (root.get("aboveTheFoldData") or root.get("mainColumnData"))
    )
    return found, from_urql


def first_value(objects: list[dict], *path: str) -> object:
    """The first non-empty value at ``path`` across the title objects."""
    for obj in objects:
        value = dig(obj, *path)
        if value not in (None, "", [], {}):
            return value
    return None


def next_genres(objects: list[dict]) -> list[str]:
    for obj in objects:
        old = dig(obj, "genres", "genres")
        if isinstance(old, list) and old:
            return [g["text"] for g in old if isinstance(g, dict) and text_of(g.get("text"))]
        new = dig(obj, "titleGenres", "genres")
        if isinstance(new, list) and new:
            return [t for g in new if (t := text_of(dig(g, "genre", "text")))]
    return []


def _add_person(actors: dict[str, str], name_obj: object) -> None:
    """Add ``{"id": "nm…", "nameText": {"text": …}}`` to ``actors`` unless present."""
    if not isinstance(name_obj, dict):
        return
    name = text_of(dig(name_obj, "nameText", "text"))
    person_id = ids.parse_person_id(name_obj.get("id") or "")
    if name and person_id and name not in actors:
        actors[name] = ids.person_url(person_id)


def _principal_credit_lists(obj: dict) -> list[list]:
    """The principal "Stars" credit lists of one title object, in every known shape."""
    lists: list[list] = []
    for group in obj.get("principalCast") or []:
        lists.append(dig(group, "credits") or [])
    for group in obj.get("castV2") or []:
        lists.append(dig(group, "credits") or [])
    for group in obj.get("principalCredits") or []:
        if dig(group, "category", "id") == "cast":
            lists.append(dig(group, "credits") or [])
    for group in obj.get("principalCreditsV2") or []:
        grouping_id = dig(group, "grouping", "groupingId") or ""
        if dig(group, "grouping", "text") in ("Stars", "Star") or grouping_id.endswith(_STARS_GROUPING_IDS):
            lists.append(dig(group, "credits") or [])
    return lists


def _cast_edge_lists(obj: dict) -> list[list]:
    """The full cast lists (edges of ``{node: {name}}``) of one title object."""
    lists: list[list] = []
    edges = dig(obj, "cast", "edges")
    if isinstance(edges, list):
        lists.append(edges)
    for group in dig(obj, "creditGroupings", "edges") or []:
        grouping = dig(group, "node", "grouping") or {}
        if grouping.get("text") == "Cast" or (grouping.get("groupingId") or "").endswith(_CAST_GROUPING_IDS):
            lists.append(dig(group, "node", "credits", "edges") or [])
    for category in obj.get("creditCategories") or []:
        if dig(category, "category", "id") == "cast":
            lists.append(dig(category, "credits", "edges") or [])
    return lists


def next_actors(objects: list[dict]) -> dict[str, str]:
    actors: dict[str, str] = {}
    for obj in objects:
        for credits in _principal_credit_lists(obj):
            for credit in credits:
                _add_person(actors, dig(credit, "name"))
    for obj in objects:
        for edges in _cast_edge_lists(obj):
            for edge in edges:
                _add_person(actors, dig(edge, "node", "name"))
    return dict(list(actors.items())[:MAX_ACTORS])


def next_era(data: dict, objects: list[dict], from_urql: bool) -> Era:
    if from_urql:
        return "next-urql"
    if any("titleGenres" in obj or "castV2" in obj for obj in objects):
        return "next-2025"
    return "next"


def title_from_next_data(data: dict, url_hint: str | None = None) -> TitleRecord | ParseError:
    """A TitleRecord from a decoded ``__NEXT_DATA__`` object."""
    code = text_of(dig(data, "props", "pageProps", "tconst")) or text_of(dig(data, "query", "tconst"))
    objects, from_urql = title_objects(data, code)
    if not objects:
        return ParseError("no title object (titleText) in __NEXT_DATA__")
    title_id = ids.parse_title_id(code or first_value(objects, "id") or url_hint or "")
    if title_id is None:
        return ParseError("no title id (tconst) in __NEXT_DATA__ or the page URL")
    title = text_of(first_value(objects, "titleText", "text"))
    if title is None:
        return ParseError("title object has no titleText.text")
    genres = next_genres(objects)
    year = first_value(objects, "releaseYear", "year")
    poster = first_value(objects, "primaryImage", "url")
    return TitleRecord(
        id=title_id,
        title=title,
        original_title=text_of(first_value(objects, "originalTitleText", "text")) or title,
        title_type=text_of(first_value(objects, "titleType", "id")),
        year=year if isinstance(year, int) else None,
        genres=genres,
        actors=next_actors(objects),
        poster_url=full_size_image(poster) if isinstance(poster, str) else None,
        synopsis=clean_synopsis(first_value(objects, "plot", "plotText", "plainText")),
        certificate=text_of(first_value(objects, "certificate", "rating")),
        is_adult=first_value(objects, "isAdult") is True or "Adult" in genres,
        era=next_era(data, objects, from_urql),
    )


# --- classic microdata pages -------------------------------------------------------------

_YEAR_RE = re.compile(r"(1[89]\d\d|20\d\d)")
_OG_TITLE_RE = re.compile(r"\(([A-Za-z][A-Za-z -]*?)?\s*(\d{4})?[–\-\d ]*\)\s*$")
_STORY_GENRE_RE = re.compile(r'href="/genre/([^"?/]+)\?ref_=tt_stry_gnr')
_OVERVIEW_GENRE_RE = re.compile(r'href="/genre/([^"?/]+)\?ref_=tt_ov_inf')


def _node_text(node) -> str | None:
    return text_of(node.text(deep=True).replace("\xa0", " ")) if node is not None else None


def _classic_title_and_year(tree) -> tuple[str | None, int | None]:
    """Title and year from the title header (2016+: ``h1[itemprop=name]`` with
    ``span#titleYear``; 2013-14: ``h1.header > span[itemprop=name]`` and ``span.nobr``).
    Never the first ``<h1>``: on some pages that is an IMDbPro advert."""
    h1 = tree.css_first("div.title_wrapper h1") or tree.css_first("h1.header")
    if h1 is None:
        return None, None
    year_node = h1.css_first("#titleYear") or h1.css_first("span.nobr")
    year_match = _YEAR_RE.search(year_node.text()) if year_node is not None else None
    year = int(year_match.group(1)) if year_match else None
    name_node = h1.css_first("span[itemprop=name]")
    if name_node is not None:
        return _node_text(name_node), year
    own_text = "".join(child.text_content or "" for child in h1.iter(include_text=True) if child.tag == "-text")
    return text_of(own_text.replace("\xa0", " ")), year


def _classic_original_title(tree) -> str | None:
    node = tree.css_first("div.originalTitle")
    if node is None:
        node = tree.css_first("h1.header span.title-extra")
    if node is None:
        return None
    parts = [c.text_content or "" for c in node.iter(include_text=True) if c.tag == "-text"]
    return text_of("".join(parts).replace("\xa0", " ").strip().strip('"'))


def _classic_type(og_title: str | None, og_type: str | None) -> str | None:
    if og_title:
        match = _OG_TITLE_RE.search(og_title)
        if match and match.group(1):
            words = match.group(1).strip().lower()
            if words in CLASSIC_TYPE_IDS:
                return CLASSIC_TYPE_IDS[words]
    return _OG_TYPE_IDS.get(og_type or "")


def _classic_genres(page_text: str) -> list[str]:
    """All genres: the storyline "Genres:" block lists them all, the header only the
    first three, so prefer the storyline and fall back to the header."""
    for pattern in (_STORY_GENRE_RE, _OVERVIEW_GENRE_RE):
        genres: list[str] = []
        for slug in pattern.findall(page_text):
            genre = unquote(slug)
            if genre not in genres:
                genres.append(genre)
        if genres:
            return genres
    return []


def _classic_actors(tree) -> dict[str, str]:
    """The cast table in billing order (2013-2016 rows carry ``itemprop=actor``, 2018
    rows are plain cells, so read the name link of each row, skipping the photo and
    character cells); the header's "Stars:" line when there is no cast table."""
    links = []
    for row in tree.css("table.cast_list tr"):
        for cell in row.css("td"):
            cell_class = cell.attributes.get("class") or ""
            if "primary_photo" in cell_class or "character" in cell_class:
                continue
            link = cell.css_first("a[href*='/name/nm']")
            if link is not None:
                links.append(link)
                break
    if not links:
        links = tree.css("[itemprop=actors] a[href*='/name/nm']")
    actors: dict[str, str] = {}
    for link in links:
        person_id = ids.parse_person_id(link.attributes.get("href") or "")
        name = _node_text(link.css_first("[itemprop=name]") or link)
        if person_id and name and name not in actors:
            actors[name] = ids.person_url(person_id)
            if len(actors) >= MAX_ACTORS:
                break
    return actors


def _classic_poster(tree, json_ld: dict | None) -> str | None:
    """Only the poster slot counts: a page-wide ``itemprop=image`` also matches sidebar
    promos for other titles (tt3291150), and the IMDb-logo ``og:image`` is no poster."""
    img = tree.css_first("div.poster img") or tree.css_first("#img_primary img")
    src = img.attributes.get("src") if img is not None else None
    if is_media_image(src):
        return full_size_image(src)
    image = json_ld.get("image") if json_ld else None
    if isinstance(image, str) and is_media_image(image):
        return full_size_image(image)
    return None


def _classic_synopsis(tree) -> str | None:
    node = (
        tree.css_first("div.summary_text")
        or tree.css_first("#overview-top p[itemprop=description]")
        or tree.css_first("#overview-top [itemprop=description]")
    )
    if node is None:
        return None
    # Drop "See full summary »" and "Add a Plot" links but keep inline text links.
    for link in node.css("a"):
        href = link.attributes.get("href") or ""
        if "plotsummary" in href or href.startswith("/updates"):
            link.decompose()
    return clean_synopsis(" ".join((node.text(deep=True) or "").replace("\xa0", " ").split()))


def _classic_certificate(tree, json_ld: dict | None) -> str | None:
    header = tree.css_first("div.title_wrapper") or tree.css_first("#overview-top")
    node = header.css_first("[itemprop=contentRating]") if header is not None else None
    if node is not None:
        value = text_of(node.attributes.get("content")) or _node_text(node)
        if value:
            return value
    rating = json_ld.get("contentRating") if json_ld else None
    return text_of(rating)


def title_from_classic_html(page: bytes, json_ld: dict | None, url_hint: str | None) -> TitleRecord | ParseError:
    """A TitleRecord from a classic (microdata) title page, JSON-LD filling gaps."""
    title_id = ids.parse_title_id(url_hint or "") or ids.parse_title_id((json_ld or {}).get("url") or "")
    if title_id is None:
        return ParseError("no title id: no canonical/og:url link or JSON-LD url")
    page_text = page.decode("utf-8", "replace")
    tree = LexborHTMLParser(classic_fragments(page).decode("utf-8", "replace"))
    title, year = _classic_title_and_year(tree)
    if title is None:
        title = text_of((json_ld or {}).get("alternateName")) or text_of((json_ld or {}).get("name"))
    if title is None:
        return ParseError("no title: no title header (h1 itemprop=name) or JSON-LD name")
    og_title = meta_content(page, "og:title")
    if year is None and og_title:
        match = _OG_TITLE_RE.search(og_title)
        year = int(match.group(2)) if match and match.group(2) else None
    genres = _classic_genres(page_text)
    if not genres and json_ld and isinstance(json_ld.get("genre"), list):
        genres = [g for g in json_ld["genre"] if isinstance(g, str)]
    return TitleRecord(
        id=title_id,
        title=title,
        original_title=_classic_original_title(tree) or text_of((json_ld or {}).get("name")) or title,
        title_type=_classic_type(og_title, meta_content(page, "og:type")),
        year=year,
        genres=genres,
        actors=_classic_actors(tree),
        poster_url=_classic_poster(tree, json_ld),
        synopsis=_classic_synopsis(tree),
        certificate=_classic_certificate(tree, json_ld),
        is_adult="Adult" in genres,
        era="classic-jsonld" if json_ld else "classic",
    )
