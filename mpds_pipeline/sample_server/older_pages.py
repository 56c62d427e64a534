"""Sample pages in IMDb's layouts of 2006-2012.

They serve archive emulation (Wayback-style captures of past years) and the parsers'
era tests; ``layout_for_year`` and ``archive_layout`` say which layout a page gets. The
layouts, as the real pages of those years: docs/parsing.md.
"""

from __future__ import annotations

import hashlib
import html

from .pages import _classic_strip, _padding

TITLE_LAYOUTS = ("next", "classic", "infobar", "tn15", "combined")
PERSON_LAYOUTS = ("next", "classic", "mobile", "infobar", "tn15")
ARCHIVE_YEARS = (2008, 2025)
# The genre that tells a short on pages of 2006-2012, whose titles carry no "short" word.
SHORT_GENRE = "Short"
OLDER_LAYOUTS = frozenset({"infobar", "tn15", "combined"})

_MPAA = {"G", "PG", "PG-13", "R", "NC-17", "X"}
_OLD_QUALIFIERS = {"tvMovie": " (TV)", "video": " (V)", "videoGame": " (VG)"}
_OG_TYPES = {"tvSeries": "tv_show", "tvEpisode": "episode", "videoGame": "game"}
_OG_WORDS = {"tvSeries": "TV Series ", "tvMovie": "TV ", "video": "Video "}


def layout_for_year(kind: str, year: int) -> str:
    """The layout IMDb served for a ``kind`` ('title'/'person') page in ``year``."""
    if year <= 2010:
        return "tn15"
    if year <= 2012:
        return "infobar"
    if year <= 2021:
        return "classic"
    return "next"


def archive_year(kind: str, item_id: int, seed: int = 0) -> int:
    """The year of an id's archived capture: spread evenly over ``ARCHIVE_YEARS``."""
    digest = hashlib.sha1(f"{seed}:archive:{kind}:{item_id}".encode()).digest()
    first, last = ARCHIVE_YEARS
    return first + int.from_bytes(digest[:4], "big") % (last - first + 1)


def archive_layout(kind: str, item_id: int, year: int | None = None, seed: int = 0) -> str:
    """The layout of an id's capture in ``year`` (default: ``archive_year``): the year's
    layout, and for a quarter of the titles up to 2014 the ``/combined`` view."""
    year = archive_year(kind, item_id, seed) if year is None else year
    if kind == "title" and year <= 2014 and (item_id + seed) % 4 == 0:
        return "combined"
    return layout_for_year(kind, year)


def shown_genres(t: dict, layout: str) -> list[str]:
    """The genres a title page of ``layout`` lists: a short's pages of 2006-2012 also
    list "Short", their only sign of the type."""
    if layout in OLDER_LAYOUTS and t["title_type"] == "short" and SHORT_GENRE not in t["genres"]:
        return [*t["genres"], SHORT_GENRE]
    return list(t["genres"])


def _latin1_page(title: str, head_extra: str, body: str, padding_kb: int) -> bytes:
    doc = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN" "http://www.w3.org/TR/html4/loose.dtd">\n'
        '<html><head>\n<meta http-equiv="content-type" content="text/html; charset=iso-8859-1">\n'
        f"<title>{html.escape(title, quote=False)}</title>\n{head_extra}</head><body>"
        f'<div id="wrapper"><div id="root">{body}</div></div>'
        f'<div id="footer">{_padding(padding_kb)}</div></body></html>'
    )
    # Browsers read iso-8859-1 as windows-1252; anything beyond it becomes a character reference.
    return doc.encode("cp1252", "xmlcharrefreplace")


def _utf8_page(title: str, head_extra: str, body: str, padding_kb: int) -> bytes:
    doc = (
        '<!DOCTYPE html>\n<html xmlns:og="http://ogp.me/ns#"><head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title, quote=False)}</title>\n{head_extra}</head><body>"
        f'<div id="wrapper"><div id="root">{body}</div></div>'
        f'<div id="footer">{_padding(padding_kb)}</div></body></html>'
    )
    return doc.encode("utf-8")


def _canonical(path: str) -> str:
    return f'<link rel="canonical" href="http://www.imdb.com{path}" />'


def _old_title_words(t: dict) -> str:
    """The title as 2006-2010 pages write it: a series' name in quotes."""
    return f'"{t["title"]}"' if t["title_type"] in ("tvSeries", "tvMiniSeries") else t["title"]


def _cast_rows(t: dict, name_class: str, character_class: str) -> str:
    rows = []
    for i, (pid, name) in enumerate(t["cast"]):
        code = f"nm{pid:07d}"
        rows.append(
            f'<tr class="{"odd" if i % 2 == 0 else "even"}"><td class="hs"><a href="/name/{code}/">'
            f'<img src="/images/tn15/addtiny.gif" width="25" height="31" border="0"></a><br></td>'
            f'<td class="{name_class}"><a href="/name/{code}/" '
            f"onclick=\"(new Image()).src='/rg/castlist/position-{i + 1}/images/b.gif?link=/name/{code}/';\">"
            f'{html.escape(name)}</a></td><td class="ddd"> ... </td>'
            f'<td class="{character_class}"><a href="/character/ch{pid:07d}/">Role {i + 1}</a></td></tr>'
        )
    return f'<table class="cast">{"".join(rows)}</table>' if rows else ""


def _block(label: str, content: str, inner: bool) -> str:
    body = f'<div class="info-content">\n{content}\n</div>' if inner else f"\n{content}\n"
    return f'<div class="info">\n<h5>{label}:</h5>{body}</div>\n'


def _tn15_title_blocks(t: dict, layout: str, inner: bool) -> str:
    code = f"tt{t['id']:07d}"
    genres = shown_genres(t, layout)
    blocks = []
    if genres:
        links = " | ".join(f'<a href="/Sections/Genres/{g}/">{g}</a>' for g in genres)
        more = f' <a class="tn15more inline" href="/title/{code}/keywords">more</a>'
        blocks.append(_block("Genre", links + more, inner))
    if t["plot"]:
        plot = (
            f'{html.escape(t["plot"])} <a class="tn15more inline" href="/title/{code}/plotsummary">full summary</a>'
            ' | <a class="tn15more inline" href="synopsis">full synopsis</a>'
        )
        blocks.append(_block("Plot", plot, inner))
    cert = t["certificate"]
    if cert in _MPAA:
        blocks.append(_block('<a href="/mpaa">MPAA</a>', f"Rated {cert} for some content.", inner))
    if cert:
        entries = [
            '<a href="/List?certificates=Iceland:14&&heading=14;Iceland:14">\nIceland:14</a> ',
            f'<a href="/List?certificates=USA:{html.escape(cert)}&&heading=14;USA:{html.escape(cert)}">\n'
            f"USA:{html.escape(cert)}</a> <i>(certificate #29160)</i>",
        ]
        blocks.append(_block("Certification", " | \n".join(entries), inner))
    return "".join(blocks)


def title_tn15(t: dict, base: str, padding_kb: int, combined: bool = False) -> bytes:
    """A main title page of 2006-2010 (``tn15``), or its ``/combined`` view."""
    code = f"tt{t['id']:07d}"
    token = t["poster_token"]
    layout = "combined" if combined else "tn15"
    if token:
        poster_id = ' id="primary-poster"' if combined else ""
        img = (
            f'<a name="poster" href="/rg/action-box-title/primary-photo/media/rm{t["id"]}/{code}" '
            f'title="{html.escape(t["title"])}"><img border="0"{poster_id} alt="{html.escape(t["title"])}" '
            f'src="{base}/images/M/{token}._V1._SX100_SY135_.jpg" /></a>'
        )
    else:
        img = (
            f'<a name="poster" href="/title/{code}/photosubmit"><img border="0" alt="No poster" '
            f'src="{base}/images/tn15/poster.gif" /></a>'
        )
    qualifier = _OLD_QUALIFIERS.get(t["title_type"], "")
    year_link = f'<a href="/year/{t["year"]}/">' if combined else f'<a href="/Sections/Years/{t["year"]}/">'
    header = (
        f'<div id="tn15title"><h1>{html.escape(_old_title_words(t))} <span>({year_link}{t["year"]}</a>){qualifier} '
        f'<span class="pro-link"><a href="http://pro.imdb.com/rg/maindetails-title/tconst-pro-header-link/title/{code}/">'
        f"More at <strong>IMDbPro</strong> &raquo;</a></span></span></h1></div>"
    )
    cast = _cast_rows(t, "nm", "char")
    body = (
        f'<div id="tn15" class="maindetails"><div id="tn15crumbs"><a href="/">IMDb</a> &gt; '
        f"<b>{html.escape(t['title'])} ({t['year']})</b></div>"
        f'<div id="tn15lhs"><div class="photo">{img}</div></div>'
        f'<div id="tn15main">{header}<div id="tn15content">'
        f"{_tn15_title_blocks(t, layout, inner=combined)}"
        f'<hr/><div class="headerinline"><h3>Cast</h3></div><div class="info">{cast}</div>'
        f'<a href="/title/{code}/fullcredits">full cast</a> <a href="/title/{code}/releaseinfo">release dates</a>'
        "</div></div></div>"
    )
    title = f"{_old_title_words(t)} ({t['year']}){qualifier}"
    if combined:
        og_type = _OG_TYPES.get(t["title_type"], "movie")
        head = (
            _canonical(f"/title/{code}/combined")
            + f'<meta property="og:url" content="http://www.imdb.com/title/{code}/combined" />'
            + f'<meta property="og:type" content="{og_type}" />'
            + f'<meta property="og:title" content="{html.escape(title)}" />'
        )
        return _latin1_page(title, head, body, padding_kb)
    return _latin1_page(title, _canonical(f"/title/{code}/"), body, padding_kb)


def title_infobar(t: dict, base: str, padding_kb: int) -> bytes:
    """A title page of the 2010 redesign, before microdata (to 2012)."""
    code = f"tt{t['id']:07d}"
    token = t["poster_token"]
    img = (
        f'<a href="/media/rm{t["id"]}/{code}"><img src="{base}/images/M/{token}._V1._SY317_.jpg" height="317" '
        f'width="214" alt="{html.escape(t["title"])} Poster" title="{html.escape(t["title"])} Poster" /></a>'
        if token
        else f'<a href="/title/{code}/photosubmit"><img src="{base}/images/nopicture/poster.gif" /></a>'
    )
    cert = t["certificate"]
    if not cert:
        cert_tag = ""
    elif t["id"] % 2:  # 2010-11: an image; 2011-12: a sprite
        slug = cert.lower().replace(" ", "_")
        cert_tag = (
            f'<img width="18" alt="{html.escape(cert)}" title="{html.escape(cert)}" '
            f'src="{base}/images/certificates/us/{slug}.png" class="absmiddle" height="15"> '
        )
    else:
        slug = cert.lower().replace(" ", "_").replace("-", "_")
        cert_tag = f'<span class="us_{slug} titlePageSprite absmiddle" title="{html.escape(cert)}"></span> '
    genres = " | ".join(f'<a href="/genre/{g}">{g}</a>' for g in shown_genres(t, "infobar"))
    plot = f"<p>{html.escape(t['plot'])}</p>" if t["plot"] else ""
    words = _OG_WORDS.get(t["title_type"], "")
    og_title = f"{t['title']} ({words}{t['year']})"
    head = (
        _canonical(f"/title/{code}/")
        + f'<meta property="og:url" content="http://www.imdb.com/title/{code}/" />'
        + f'<meta property="og:type" content="{_OG_TYPES.get(t["title_type"], "movie")}" />'
        + f'<meta property="og:title" content="{html.escape(og_title)}" />'
    )
    body = (
        '<div id="pagecontent"><table id="title-overview-widget-layout"><tr>'
        f'<td rowspan="2" id="img_primary">{img}</td><td id="overview-top">'
        f'<h1 class="header">{html.escape(t["title"])} <span>(<a href="/year/{t["year"]}/">{t["year"]}</a>)</span></h1>'
        f'<div class="infobar">{cert_tag}120 min &nbsp;-&nbsp; {genres}</div>'
        '<div class="star-box"><div class="star-box-giga-star">7.0</div></div>'
        f"{plot}"
        "</td></tr></table>"
        f'<div id="maindetails_center_bottom"><div class="article"><h2>Cast</h2>{_cast_rows(t, "name", "character")}'
        "</div></div></div>"
    )
    return _utf8_page(f"{t['title']} ({t['year']}) - IMDb", head, body, padding_kb)


def person_tn15(p: dict, base: str, padding_kb: int) -> bytes:
    """A person page of 2006-2010: the professions only as filmography sections."""
    code = f"nm{p['id']:07d}"
    token = p["image_token"]
    src = f"{base}/images/M/{token}._V1._SX100_SY140_.jpg" if token else f"{base}/images/tn15/nophoto.gif"
    photo = (
        f'<div class="photo"><a name="headshot" href="/rg/action-box-name/headshot/media/rm{p["id"]}/{code}">'
        f'<img src="{src}" alt="{html.escape(p["name"])}" border="0"></a></div>'
    )
    # Sections that are no profession ("Self", "Thanks") come between and after them.
    between = ["self"] if p["id"] % 2 == 0 else []
    sections = [*p["professions"][:1], *between, *p["professions"][1:], "thanks"]
    jump = ", ".join(f'<a href="#{s}">{s.title()}</a>' for s in sections)
    filmo = "".join(
        f'<div class="filmo"><h5><a name="{s}">{s.title()}:</a></h5><ol><li>'
        f'<a href="/title/tt{(p["id"] * 7 + i) % 9000 + 1:07d}/">The Work {i + 1}</a> (2001)</li></ol></div>'
        for i, s in enumerate(sections)
    )
    body = (
        f'<div id="tn15" class="maindetails"><div id="tn15lhs">{photo}</div><div id="tn15main">'
        f'<div id="tn15title"><h1>{html.escape(p["name"])} <span class="pro-link">'
        f'<a href="http://pro.imdb.com/rg/maindetails-title/nconst-pro-header-link/name/{code}/">More at '
        f'<strong>IMDbPro</strong> &raquo;</a></span></h1></div><div id="tn15content">{_classic_strip(p, base)}'
        f'<hr><h3>Filmography</h3> <div class="strip jump">Jump to filmography as:&nbsp;{jump}</div> {filmo}'
        f'<a href="/name/{code}/bio">biography</a> <a href="/name/{code}/filmoyear">by year</a></div></div></div>'
    )
    return _latin1_page(p["name"], _canonical(f"/name/{code}/"), body, padding_kb)


def person_infobar(p: dict, base: str, padding_kb: int) -> bytes:
    """A person page of 2011-2012: job titles on ``<a itemprop="jobTitle">`` in ``div.infobar``."""
    code = f"nm{p['id']:07d}"
    token = p["image_token"]
    img = (
        f'<a href="/media/rm{p["id"]}/{code}"><img src="{base}/images/M/{token}._V1._SY317_.jpg" height="317" '
        f'width="214" alt="{html.escape(p["name"])} Picture" itemprop="image" /></a>'
        if token
        else ""
    )
    jobs = ' <span class="ghost">|</span> '.join(
        f'<a href="#{prof}" itemprop="jobTitle">{prof.title()}</a>' for prof in p["professions"]
    )
    body = (
        '<div id="pagecontent" itemscope itemtype="http://schema.org/Person"><table id="name-overview-widget-layout">'
        f'<tr><td rowspan="2" id="img_primary">{img}</td><td id="overview-top">'
        f'<h1 class="header" itemprop="name">{html.escape(p["name"])}</h1>'
        f'<div class="infobar">{jobs}</div></td></tr></table>{_classic_strip(p, base)}'
        f'<div id="maindetails_center_bottom"><a href="/name/{code}/bio">See full bio</a></div></div>'
    )
    head = _canonical(f"/name/{code}/") + f'<meta property="og:url" content="http://www.imdb.com/name/{code}/" />'
    return _utf8_page(f"{p['name']} - IMDb", head, body, padding_kb)


def render_older_title(t: dict, layout: str, base: str, padding_kb: int) -> bytes:
    if layout == "infobar":
        return title_infobar(t, base, padding_kb)
    return title_tn15(t, base, padding_kb, combined=layout == "combined")


def render_older_person(p: dict, layout: str, base: str, padding_kb: int) -> bytes:
    return (person_infobar if layout == "infobar" else person_tn15)(p, base, padding_kb)
