"""Title pages -> TitleRecord, for every layout era.

Two routes: Next.js pages (``__NEXT_DATA__`` JSON, 2022-2025) and classic pages parsed
with lexbor (2006-2021). Actors are the cast as the page bills it, top-billed first, at
most ``MAX_ACTORS``. Where each field is in each layout, and why the cast is capped:
docs/parsing.md.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote

from selectolax.lexbor import LexborHTMLParser

from . import ids
from .page_data import (
    NON_DATA_KEYS,
    classic_fragments,
    dig,
    find_objects_with,
    full_size_image,
    is_media_image,
    labelled_block,
    markup_text,
    meta_content,
    saved_copy_image,
    text_of,
)
from .records import Era, ParseError, TitleRecord

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
    "tv": "tvMovie",  # og:title of 2010-12: "Title (TV 2009)"
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


# --- classic pages: microdata (2011-2018) and before (2006-2011, /combined) ---------------

_YEAR_RE = re.compile(r"(1[89]\d\d|20\d\d)")
_OG_TITLE_RE = re.compile(r"\(([A-Za-z][A-Za-z -]*?)?\s*(\d{4})?[–\-\d ]*\)\s*$")
# Links may be absolute or an archive's rewritten URL (".../web/2016.../http://www.imdb.com/genre/…").
# The literal start keeps the scan of a whole page fast.
_STORY_GENRE_RE = re.compile(r'/genre/([^"?/]+)\?ref_=tt_stry_gnr')
_OVERVIEW_GENRE_RE = re.compile(r'/genre/([^"?/]+)\?ref_=tt_ov_inf')
# Any era's genre link: /genre/Action (2010-2025) or /Sections/Genres/Action/ (to 2010).
_GENRE_LINK_RE = re.compile(r'href="[^"]*?/(?:genre|Sections/Genres)/([^"?/#]+)/?[?"]', re.I)
_INFOBAR_RE = re.compile(r'<div class="infobar">(.*?)</div>', re.S)
# Title qualifiers of 2006-2011 pages: "(TV)", "(V)", "(VG)", and "TV series 2002-2008".
_OLD_QUALIFIERS = {"tv": "tvMovie", "v": "video", "vg": "videoGame"}
_OLD_QUALIFIER_RE = re.compile(r"\((TV|V|VG)\)")
_SERIES_WORDS_RE = re.compile(r"\b(TV (?:mini-?|mini )?series|TV episode|TV special|TV short)\b", re.I)
_OG_TYPE_IDS_OLD = {"movie": "movie", "tv_show": "tvSeries", "episode": "tvEpisode", "game": "videoGame"}
_MPAA_RE = re.compile(r"\bRated\s+([A-Z0-9][A-Za-z0-9-]*)\b")
_CERTIFICATE_RE = re.compile(r"(?:USA|United States):\s*([^<|(]+?)\s*(?:<|\||\(|$)")
_IMG_TAG_RE = re.compile(r"<(?:img|span)\b[^>]*>", re.I)
_ATTR_RE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_TITLE_TAG_RE = re.compile(rb"<title[^>]*>([^<]*)</title>", re.I)
# Links from a page to its own sub-pages: the id of a page without a canonical link.
_TITLE_SUBPAGE_RE = re.compile(
    rb"/title/(tt\d{7,9})/(?:fullcredits|plotsummary|releaseinfo|keywords|taglines|trivia|synopsis|"
    rb"parentalguide|ratings|mediaindex|board|combined|maindetails)"
)
_PLOT_LINKS = ("plotsummary", "synopsis", "/updates", "keywords", "/rg/")


def _node_text(node) -> str | None:
    return text_of(node.text(deep=True).replace("\xa0", " ")) if node is not None else None


def _own_text(node) -> str | None:
    own = "".join(child.text_content or "" for child in node.iter(include_text=True) if child.tag == "-text")
    return text_of(" ".join(own.replace("\xa0", " ").split()))


def _title_header(tree):
    """The title header of any era, never merely the first ``<h1>`` (on some pages an
    IMDbPro advert): 2016+ ``div.title_wrapper h1``, 2010-15 ``h1.header``, 2006-10
    ``#tn15title h1`` (main pages and ``/combined``)."""
    for selector in ("div.title_wrapper h1", "h1.header", "#tn15title h1", "h1[itemprop=name]"):
        node = tree.css_first(selector)
        if node is not None:
            return node
    return None


def _classic_title_and_year(h1) -> tuple[str | None, int | None]:
    """Title and year from the title header: 2016+ ``span#titleYear``, 2013-14
    ``span[itemprop=name]`` and ``span.nobr``, 2006-12 the header's own text and a
    year link (``/year/1988/``, ``/Sections/Years/2004/``) in its first span."""
    if h1 is None:
        return None, None
    year_node = (
        h1.css_first("#titleYear")
        or h1.css_first("span.nobr")
        or h1.css_first("a[href*='/year/']")
        or h1.css_first("a[href*='/Sections/Years/']")
        or h1.css_first("span")
    )
    year_match = _YEAR_RE.search(year_node.text()) if year_node is not None else None
    year = int(year_match.group(1)) if year_match else None
    name_node = h1.css_first("span[itemprop=name]")
    if name_node is not None:
        return _node_text(name_node), year
    return _own_text(h1), year


_QUOTED_RE = re.compile(r'^"(.+?)"\s*(.*)$')


def _old_header_title(title: str | None) -> str | None:
    """The title in a 2006-2010 header: a series' name is quoted ('"The Wire"' is The
    Wire, '"Lost" Pilot: Part 1' the episode Pilot: Part 1), and a qualifier such as
    "(V)" may follow it."""
    title = text_of(_OLD_QUALIFIER_RE.sub("", title or ""))
    match = _QUOTED_RE.match(title or "")
    if match is None:
        return title
    return text_of(match.group(2)) or match.group(1)


def _classic_original_title(tree, h1) -> str | None:
    node = tree.css_first("div.originalTitle")
    if node is None and h1 is not None:
        node = h1.css_first("span.title-extra")
    if node is None:
        return None
    return text_of((_own_text(node) or "").strip('"'))


def _title_tag(page: bytes) -> str | None:
    match = _TITLE_TAG_RE.search(page, 0, 200_000)
    return text_of(html.unescape(match.group(1).decode("utf-8", "replace"))) if match else None


def _classic_type(og_title: str | None, og_type: str | None, old_title: str | None, genres: list[str]) -> str | None:
    """The type from the words of the title (og:title of 2011-2018: "The Wire (TV Series
    2002-2008)"; the <title>/header of 2006-2011: quotes for a series, "(TV)", "(V)",
    "(VG)"), else og:type. On 2006-2011 pages a title without a qualifier is a movie,
    a short one when its genre says so (IMDb's later "short" type)."""
    if og_title:
        match = _OG_TITLE_RE.search(og_title)
        if match and match.group(1):
            words = match.group(1).strip().lower()
            if words in CLASSIC_TYPE_IDS:
                return CLASSIC_TYPE_IDS[words]
    if old_title:
        series = _SERIES_WORDS_RE.search(old_title)
        if series:
            return CLASSIC_TYPE_IDS.get(series.group(1).lower().replace("mini series", "mini-series"))
        qualifier = _OLD_QUALIFIER_RE.search(old_title)
        if qualifier:
            return _OLD_QUALIFIERS[qualifier.group(1).lower()]
        if old_title.startswith('"'):
            # '"The Wire" (2002)' is the series, '"The Wire" The Target (2002)' an episode.
            closing = old_title.find('"', 1)
            rest = old_title[closing + 1 :].strip() if closing > 0 else ""
            return "tvEpisode" if rest and not rest.startswith("(") else "tvSeries"
    found = _OG_TYPE_IDS.get(og_type or "") or _OG_TYPE_IDS_OLD.get(og_type or "")
    if found:
        return "short" if found == "movie" and "Short" in genres else found
    if old_title:
        return "short" if "Short" in genres else "movie"
    return None


def _genre_links(markup: str | None) -> list[str]:
    genres: list[str] = []
    for slug in _GENRE_LINK_RE.findall(markup or ""):
        genre = unquote(slug).replace("_", "-")
        if genre not in genres:
            genres.append(genre)
    return genres


def _classic_genres(page_text: str) -> list[str]:
    """All genres: the storyline "Genres:" block lists them all, the header only the
    first three, so prefer the storyline and fall back to the header; pages of 2006-2012
    have a "Genre:" block or the infobar."""
    for pattern in (_STORY_GENRE_RE, _OVERVIEW_GENRE_RE):
        genres: list[str] = []
        for slug in pattern.findall(page_text):
            genre = unquote(slug)
            if genre not in genres:
                genres.append(genre)
        if genres:
            return genres
    genres = _genre_links(labelled_block(page_text, "Genres", "Genre"))
    if not genres:
        infobar = _INFOBAR_RE.search(page_text)
        genres = _genre_links(infobar.group(1) if infobar else None)
    return genres


_PHOTO_CELLS = ("primary_photo", "hs")
_CHARACTER_CELLS = ("character", "char")


def _classic_actors(tree) -> dict[str, str]:
    """The cast table in billing order (2013-2016 rows carry ``itemprop=actor``, 2018
    rows are plain cells, 2006-2012 ``table.cast`` rows a ``td.nm``/``td.name`` cell),
    so read the name link of each row, skipping the photo and character cells; the
    header's "Stars:" line when there is no cast table."""
    links = []
    table = tree.css_first("table.cast_list") or tree.css_first("table.cast")
    for row in table.css("tr") if table is not None else []:
        for cell in row.css("td"):
            cell_class = cell.attributes.get("class") or ""
            if any(word in cell_class.split() for word in _PHOTO_CELLS + _CHARACTER_CELLS):
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


# The poster slot of each era: 2016+ div.poster, 2010-15 td#img_primary, 2006-10 (main
# and /combined) div.photo with the "poster" link.
_POSTER_SELECTORS = ("div.poster img", "#img_primary img", "#primary-poster", "a[name=poster] img", "div.photo img")


def _classic_poster(tree, json_ld: dict | None) -> str | None:
    """Only the poster slot counts: a page-wide ``itemprop=image`` also matches sidebar
    promos for other titles (tt3291150), and the IMDb-logo ``og:image`` is no poster."""
    for selector in _POSTER_SELECTORS:
        img = tree.css_first(selector)
        if img is None:
            continue
        src = img.attributes.get("src")
        if is_media_image(src):
            return full_size_image(src)
        if saved := saved_copy_image(src):
            return saved
        break
    image = json_ld.get("image") if json_ld else None
    if isinstance(image, str) and is_media_image(image):
        return full_size_image(image)
    return None


def _classic_synopsis(tree, page_text: str) -> str | None:
    """The plot outline (the short plot under the title), never the storyline: 2011+
    ``summary_text``/``itemprop=description``, 2010-11 the paragraph of
    ``#overview-top``, 2006-10 the "Plot:" (earlier "Plot Outline:") block."""
    node = (
        tree.css_first("div.summary_text")
        or tree.css_first("#overview-top p[itemprop=description]")
        or tree.css_first("#overview-top [itemprop=description]")
        or tree.css_first("#overview-top > p")
    )
    if node is not None:
        # Drop "See full summary »" and "Add a Plot" links but keep inline text links.
        for link in node.css("a"):
            href = link.attributes.get("href") or ""
            if "plotsummary" in href or href.startswith("/updates"):
                link.decompose()
        return clean_synopsis(" ".join((node.text(deep=True) or "").replace("\xa0", " ").split()))
    block = labelled_block(page_text, "Plot", "Plot Outline", "Plot Summary")
    if block is None:
        return None
    # Cut at the first link to more plot text ("full summary", "full synopsis", "more").
    cuts = [
        i for m in re.finditer(r"<a\b[^>]*>", block) if any(w in m.group(0) for w in _PLOT_LINKS) for i in [m.start()]
    ]
    text = markup_text(block[: cuts[0]] if cuts else block).rstrip(" |»")
    return clean_synopsis(text)


def _attrs(tag: str) -> dict[str, str]:
    return {name.lower(): html.unescape(double or single) for name, double, single in _ATTR_RE.findall(tag)}


def _classic_certificate(tree, json_ld: dict | None, page_text: str, old: bool) -> str | None:
    """2011-2018: ``itemprop=contentRating`` in the header, JSON-LD; 2010-12: the
    infobar's certificate image or sprite (its ``title``); 2006-2016 (main pages and
    ``/combined``): "MPAA: Rated R for …", else the USA entry of "Certification:"."""
    header = tree.css_first("div.title_wrapper") or tree.css_first("#overview-top")
    node = header.css_first("[itemprop=contentRating]") if header is not None else None
    if node is not None:
        value = text_of(node.attributes.get("content")) or _node_text(node)
        if value:
            return value
    rating = text_of(json_ld.get("contentRating")) if json_ld else None
    if rating:
        return rating
    infobar = _INFOBAR_RE.search(page_text)
    for tag in _IMG_TAG_RE.findall(infobar.group(1) if infobar else ""):
        attrs = _attrs(tag)
        is_certificate = "certificates/" in attrs.get("src", "") or "titlePageSprite" in attrs.get("class", "")
        if is_certificate and (value := text_of(attrs.get("title") or attrs.get("alt"))):
            return value
    if not old:
        return None
    mpaa = labelled_block(page_text, "MPAA")
    match = _MPAA_RE.search(markup_text(mpaa)) if mpaa else None
    if match:
        return match.group(1)
    certification = labelled_block(page_text, "Certification")
    match = _CERTIFICATE_RE.search(markup_text(certification)) if certification else None
    return text_of(match.group(1)) if match else None


def _title_id(page: bytes, json_ld: dict | None, url_hint: str | None) -> int | None:
    found = ids.parse_title_id(url_hint or "") or ids.parse_title_id((json_ld or {}).get("url") or "")
    if found is None:
        codes = [m.group(1) for m in _TITLE_SUBPAGE_RE.finditer(page)]
        if codes:
            found = ids.parse_title_id(max(set(codes), key=codes.count).decode())
    return found


def _classic_era(h1, url_hint: str | None, json_ld: dict | None) -> Era:
    if url_hint and "/combined" in url_hint:
        return "combined"
    if h1 is not None and h1.parent is not None and h1.parent.attributes.get("id") == "tn15title":
        return "tn15"
    return "classic-jsonld" if json_ld else "classic"


_OLD_ERAS = ("tn15", "combined")


def title_from_classic_html(page: bytes, json_ld: dict | None, url_hint: str | None) -> TitleRecord | ParseError:
    """A TitleRecord from a classic title page of any year (2006-2022, ``/combined``
    included), JSON-LD filling gaps. Each field is found by what it is, through the
    markup every era used for it."""
    title_id = _title_id(page, json_ld, url_hint)
    if title_id is None:
        return ParseError("no title id: no canonical/og:url link, JSON-LD url or links to the page's own sub-pages")
    page_text = page.decode("utf-8", "replace")
    tree = LexborHTMLParser(classic_fragments(page).decode("utf-8", "replace"))
    h1 = _title_header(tree)
    title, year = _classic_title_and_year(h1)
    era = _classic_era(h1, url_hint, json_ld)
    if era in _OLD_ERAS:
        title = _old_header_title(title)
    if title is None:
        title = text_of((json_ld or {}).get("alternateName")) or text_of((json_ld or {}).get("name"))
    if title is None:
        return ParseError(
            "layout not supported: no title header (div.title_wrapper h1, h1.header, #tn15title h1) or JSON-LD name"
        )
    og_title = meta_content(page, "og:title")
    title_tag = _title_tag(page) if year is None or era in _OLD_ERAS else None
    if year is None:
        for text in (og_title, title_tag):
            match = _OG_TITLE_RE.search(text or "")
            if match and match.group(2):
                year = int(match.group(2))
                break
    genres = _classic_genres(page_text)
    if not genres and json_ld and isinstance(json_ld.get("genre"), list):
        genres = [g for g in json_ld["genre"] if isinstance(g, str)]
    # The header's words as the page shows them, for the 2006-2011 type qualifiers.
    old_title = None
    if era in _OLD_ERAS:
        # A qualifier ("(V)") may be in either; a quoted series name is surest in <title>.
        header_words = _node_text(h1) if h1 is not None else None
        quoted = title_tag and title_tag.startswith('"')
        old_title = title_tag if quoted else " ".join(filter(None, (header_words, title_tag)))
    return TitleRecord(
        id=title_id,
        title=title,
        original_title=_classic_original_title(tree, h1) or text_of((json_ld or {}).get("name")) or title,
        title_type=_classic_type(og_title, meta_content(page, "og:type"), old_title, genres),
        year=year,
        genres=genres,
        actors=_classic_actors(tree),
        poster_url=_classic_poster(tree, json_ld),
        synopsis=_classic_synopsis(tree, page_text),
        certificate=_classic_certificate(tree, json_ld, page_text, era in _OLD_ERAS),
        is_adult="Adult" in genres,
        era=era,
    )
