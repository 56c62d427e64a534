"""HTML for the sample pages, in the shapes of real IMDb layouts.

Next.js pages carry ``<script id="__NEXT_DATA__">`` (props.pageProps.aboveTheFoldData /
mainColumnData for titles, aboveTheFold for persons) plus a JSON-LD script; classic
pages use schema.org microdata. Image URLs point back at this server in IMDb's format
(``/images/M/<token>._V1_<ops>.jpg``). Pages are padded with inert markup so their
size is closer to a real page's.
"""

from __future__ import annotations

import html
import json

from .content import person_name, sample_person, sample_title
from .photos import photo_size

RESIZED_OPS = "QL75_UX380_"
_PADDING_BLOCK = (
    '<div class="ipc-sub-grid-item"><a class="ipc-link ipc-link--base" href="/chart/top/?ref_=nv_mv_250">'
    '<span class="ipc-list-item__text">Top 250 Movies</span></a><svg width="24" height="24" '
    'xmlns="http://www.w3.org/2000/svg" class="ipc-icon ipc-icon--chevron-right"><path fill="none" '
    'd="M0 0h24v24H0V0z"></path></svg></div>\n'
)


def image_url(base: str, token: str, ops: str = "") -> str:
    return f"{base}/images/M/{token}._V1_{ops}.jpg"


def _padding(kb: int) -> str:
    return _PADDING_BLOCK * max(0, kb * 1024 // len(_PADDING_BLOCK))


def _json_script(data: dict, script_id: str | None = None) -> str:
    # "</" inside JSON would end the script element early.
    text = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    if script_id:
        return f'<script id="{script_id}" type="application/json">{text}</script>'
    return f'<script type="application/ld+json">{text}</script>'


def _canonical(path: str) -> str:
    # Real pages name their canonical www.imdb.com URL whatever host served them.
    url = f"https://www.imdb.com{path}"
    return f'<link rel="canonical" href="{url}"/><meta property="og:url" content="{url}"/>'


def _page(title: str, head_extra: str, body: str, padding_kb: int, path: str | None = None) -> bytes:
    doc = (
        f'<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8"/><title>{html.escape(title)}</title>'
        f"{_canonical(path) if path else ''}{head_extra}</head><body>"
        # An IMDbPro ad, as on real pages, before the real heading.
        '<div class="imdb-pro-ad"><h1 class="pro-ad">See more at IMDbPro</h1></div>'
        f"{body}<footer>{_padding(padding_kb)}</footer></body></html>"
    )
    return doc.encode("utf-8")


def render_title(title_id: int, seed: int, base: str, padding_kb: int = 64, layout: str | None = None) -> bytes | None:
    """The title page; ``layout`` (older_pages.TITLE_LAYOUTS) renders it as IMDb did in
    another year, None as the live site does (``sample_title(id)["layout"]``)."""
    t = sample_title(title_id, seed)
    if t["status"] != "ok":
        return None
    layout = layout or t["layout"]
    if layout == "next":
        return _title_next(t, base, padding_kb)
    if layout == "classic":
        return _title_classic(t, base, padding_kb)
    from .older_pages import TITLE_LAYOUTS, render_older_title

    if layout not in TITLE_LAYOUTS:
        raise ValueError(f"unknown title layout {layout!r}: expected one of {TITLE_LAYOUTS}")
    return render_older_title(t, layout, base, padding_kb)


def render_person(
    person_id: int, seed: int, base: str, padding_kb: int = 32, layout: str | None = None
) -> bytes | None:
    """The person page; ``layout`` (older_pages.PERSON_LAYOUTS) as in render_title."""
    p = sample_person(person_id, seed)
    if p["status"] != "ok":
        return None
    layout = layout or p["layout"]
    render = {"next": _person_next, "classic": _person_classic, "mobile": _person_mobile}.get(layout)
    if render is not None:
        return render(p, base, padding_kb)
    from .older_pages import PERSON_LAYOUTS, render_older_person

    if layout not in PERSON_LAYOUTS:
        raise ValueError(f"unknown person layout {layout!r}: expected one of {PERSON_LAYOUTS}")
    return render_older_person(p, layout, base, padding_kb)


def render_gallery(person_id: int, seed: int, base: str, padding_kb: int = 16) -> bytes | None:
    """``/name/nm…/mediaindex``: every photo of the person (strip, then the rest), as a
    Next.js page whose data holds image nodes like IMDb's image API (tags included)."""
    p = sample_person(person_id, seed)
    if p["status"] != "ok":
        return None
    code = f"nm{p['id']:07d}"
    photos = p["photos"] + p["gallery"]
    edges = [{"node": _image_node(p, photo, index, base, tags=True)} for index, photo in enumerate(photos)]
    name = {"id": code, "nameText": {"text": p["name"]}, "images": {"total": len(edges), "edges": edges}}
    next_data = _next_data("nconst", code, "/name/[nconst]/mediaindex", contentData={"data": {"name": name}})
    body = f"<h1>{html.escape(p['name'])}: Photos</h1>{_json_script(next_data, '__NEXT_DATA__')}"
    return _page(f"{p['name']} - Photos - IMDb", "", body, padding_kb, f"/name/{code}/mediaindex/")


def _image_node(p: dict, photo: dict, index: int, base: str, tags: bool) -> dict:
    width, height = photo_size(photo["kind"], photo["token"])
    node = {
        "id": f"rm{p['id']}{index:02d}",
        "width": width,
        "height": height,
        # Half full size, half resized: the parser must reduce both to the original.
        "url": image_url(base, photo["token"], "" if index % 2 else "QL75_UX500_"),
        "caption": {"plainText": photo["caption"]} if photo["caption"] else None,
    }
    if tags and photo["tagged"] is not None:
        node["names"] = [{"id": f"nm{pid:07d}", "nameText": {"text": person_name(pid)}} for pid in photo["tagged"]]
    return node


def _strip_link(p: dict, index: int, mobile: bool) -> str:
    code = f"nm{p['id']:07d}"
    ref = f"m_nm_ph_{index + 1}" if mobile else f"nm_phs_md_{index + 1}"
    if not mobile and index % 3 == 2:  # the 2014 desktop link form
        return f"/media/rm{p['id']}{index:02d}/{code}?ref_={ref}"
    return f"/name/{code}/mediaviewer/rm{p['id']}{index:02d}?context=default&amp;ref_={ref}"


def _classic_strip(p: dict, base: str) -> str:
    """The desktop strip: lazy-loaded 99 px thumbnails (the URL in ``loadlate``, a
    placeholder in ``src``), some in the old ``._V1._CR…_SS99_`` form."""
    links = []
    for index, photo in enumerate(p["photos"]):
        token = photo["token"]
        thumb = (
            f"{base}/images/M/{token}._V1._CR0,0,99,99_SS99_.jpg"
            if index % 2
            else image_url(base, token, "UY99_CR27,0,99,99_AL_")
        )
        caption = html.escape(photo["caption"], quote=True) if photo["caption"] else None
        words = f'alt="{caption}" title="{caption}"' if caption else ""
        links.append(
            f'<a href="{_strip_link(p, index, False)}"\nitemprop=\'thumbnailUrl\'><img height="99" width="99" {words}'
            f'src="{base}/images/G/01/imdb/images/nopicture/small/unknown.png"class="loadlate hidden " '
            f"loadlate=\"{thumb}\" itemprop='image' /></a>"
        )
    return f'<div class="mediastrip_container"><div class="mediastrip">{"".join(links)}</div></div>'


def _mobile_strip(p: dict, base: str) -> str:
    items = []
    for index, photo in enumerate(p["photos"]):
        token = photo["token"]
        alt = f' alt="{html.escape(photo["caption"], quote=True)}"' if photo["caption"] else ""
        items.append(
            f'<li><a href="{_strip_link(p, index, True)}"\nitemprop=\'thumbnailUrl\'><img src="{image_url(base, token, "UY90_CR22,0,90,90_AL_")}"\n'
            f'data-src-x2="{image_url(base, token, "UY180_CR45,0,180,180_AL_")}"\nwidth="90"\nheight="90"{alt}\nitemprop="image" /></a></li>'
        )
    return f'<section id="media-strip"><div class="smooth-scroller horizontal"><ul class="list-inline">{"".join(items)}</ul></div></section>'


def _og_image(base: str, token: str | None) -> str:
    # A title without a poster shows IMDb's logo as its social image: not a poster.
    url = image_url(base, token, "FMjpg_UX1000_") if token else f"{base}/images/G/01/imdb/images/logos/imdb_fb_logo.png"
    return f'<meta property="og:image" content="{url}"/>'


def _title_next(t: dict, base: str, padding_kb: int) -> bytes:
    code = f"tt{t['id']:07d}"
    token = t["poster_token"]
    # Half the pages give the full-size URL, half a resized one, as real pages vary.
    poster = (
        {
            "id": f"rm{t['id']}",
            "width": 400,
            "height": 600,
            "url": image_url(base, token, "" if t["id"] % 2 else RESIZED_OPS),
        }
        if token
        else None
    )
    above = {
        "id": code,
        "titleText": {"text": t["title"]},
        "originalTitleText": {"text": t["original_title"]},
        "titleType": {"text": t["title_type"], "id": t["title_type"], "isSeries": t["title_type"] == "tvSeries"},
        "releaseYear": {"year": t["year"], "endYear": None},
        "certificate": {"rating": t["certificate"]} if t["certificate"] else None,
        "genres": {"genres": [{"text": g, "id": g} for g in t["genres"]]},
        "primaryImage": poster,
        "plot": {"plotText": {"plainText": t["plot"]}, "language": {"id": t["language"]}} if t["plot"] else None,
        "isAdult": t["is_adult"],
    }
    main = {
        "id": code,
        "titleText": above["titleText"],
        "originalTitleText": above["originalTitleText"],
        "releaseYear": above["releaseYear"],
        "isAdult": t["is_adult"],
        "cast": {
            "edges": [
                {"node": {"name": {"id": f"nm{pid:07d}", "nameText": {"text": name}}, "category": {"id": "actor"}}}
                for pid, name in t["cast"]
            ]
        },
    }
    next_data = _next_data("tconst", code, "/title/[tconst]", aboveTheFoldData=above, mainColumnData=main)
    actors = [{"@type": "Person", "url": f"/name/nm{pid:07d}/", "name": name} for pid, name in t["cast"][:3]]
    ld = _json_ld("Movie", f"/title/{code}/", t["original_title"], base, token, genre=t["genres"][:3], actor=actors)
    if t["plot"]:
        ld["description"] = t["plot"]
    if t["certificate"]:
        ld["contentRating"] = t["certificate"]
    head = _og_image(base, token) + _json_script(ld)
    img = (
        f'<img class="ipc-image" alt="{html.escape(t["title"])}" src="{image_url(base, token, RESIZED_OPS)}"/>'
        if token
        else ""
    )
    body = (
        f'<h1 data-testid="hero__pageTitle"><span>{html.escape(t["title"])}</span></h1>'
        f'<div class="ipc-poster">{img}</div>{_json_script(next_data, "__NEXT_DATA__")}'
    )
    return _page(f"{t['title']} ({t['year']}) - IMDb", head, body, padding_kb, f"/title/{code}/")


def _next_data(id_key: str, code: str, route: str, **page_props: object) -> dict:
    """The ``__NEXT_DATA__`` envelope of a Next.js page: the id under ``id_key`` in the
    page props and the query, then the page's own props."""
    return {
        "props": {"pageProps": {id_key: code, **page_props}},
        "page": route,
        "query": {id_key: code},
        "buildId": "sample",
    }


def _json_ld(schema_type: str, path: str, name: str, base: str, token: str | None, **props: object) -> dict:
    """A page's schema.org JSON-LD object: its type, URL and name, ``props``, then its image."""
    ld = {"@context": "https://schema.org", "@type": schema_type, "url": path, "name": name, **props}
    if token:
        ld["image"] = image_url(base, token)
    return ld


def _title_classic(t: dict, base: str, padding_kb: int) -> bytes:
    code = f"tt{t['id']:07d}"
    token = t["poster_token"]
    poster = (
        f'<div class="poster"><a href="/title/{code}/mediaviewer/rm{t["id"]}"><img alt="{html.escape(t["title"])} Poster" '
        f'src="{image_url(base, token, "UY268_CR0,0,182,268_AL_")}" itemprop="image" /></a></div>'
        if token
        else ""
    )
    genres = "".join(
        f'<a href="/genre/{g}?ref_=tt_ov_inf"><span class="itemprop" itemprop="genre">{g}</span></a> '
        for g in t["genres"]
    )
    storyline_genres = "".join(f'<a href="/genre/{g}?ref_=tt_stry_gnr"> {g}</a>' for g in t["genres"])
    cert = f'<meta itemprop="contentRating" content="{t["certificate"]}">{t["certificate"]}' if t["certificate"] else ""
    plot = (
        f'<div class="summary_text" itemprop="description">{html.escape(t["plot"])}</div>'
        if t["plot"]
        else '<div class="summary_text"><a href="/updates?update=' + code + ':outlines.add.1">Add a Plot</a></div>'
    )
    rows = "".join(
        f'<tr class="{"odd" if i % 2 == 0 else "even"}"><td class="itemprop" itemprop="actor" itemscope '
        f'itemtype="http://schema.org/Person"><a href="/name/nm{pid:07d}/?ref_=tt_cl_t{i + 1}" itemprop="url">'
        f'<span class="itemprop" itemprop="name">{html.escape(name)}</span></a></td></tr>'
        for i, (pid, name) in enumerate(t["cast"])
    )
    cast = f'<table class="cast_list">{rows}</table>' if rows else ""
    adult = '<meta name="adult" content="true"/>' if t["is_adult"] else ""
    body = (
        f'<div itemscope itemtype="http://schema.org/Movie"><div class="title_wrapper">'
        f'<h1 itemprop="name" class="">{html.escape(t["title"])}&nbsp;<span id="titleYear">(<a href="/year/{t["year"]}/">'
        f'{t["year"]}</a>)</span></h1><div class="subtext">{cert} | {genres}</div></div>'
        f'{poster}<div class="plot_summary">{plot}</div>{cast}'
        f'<div class="see-more inline canwrap"><h4 class="inline">Genres:</h4>{storyline_genres}</div></div>'
    )
    return _page(
        f"{t['title']} ({t['year']}) - IMDb", _og_image(base, token) + adult, body, padding_kb, f"/title/{code}/"
    )


def _person_next(p: dict, base: str, padding_kb: int) -> bytes:
    code = f"nm{p['id']:07d}"
    token = p["image_token"]
    above = {
        "id": code,
        "nameText": {"text": p["name"]},
        "primaryImage": {"url": image_url(base, token), "width": 320, "height": 440} if token else None,
        "primaryProfessions": [{"category": {"text": prof.title(), "id": prof}} for prof in p["professions"]],
    }
    main = {
        "id": code,
        "nameText": above["nameText"],
        "images": {
            "total": len(p["photos"]),
            "edges": [{"node": _image_node(p, photo, i, base, tags=True)} for i, photo in enumerate(p["photos"])],
        },
    }
    next_data = _next_data("nconst", code, "/name/[nconst]", aboveTheFold=above, mainColumnData=main)
    jobs = [prof.title() for prof in p["professions"]]
    ld = _json_ld("Person", f"/name/{code}/", p["name"], base, token, jobTitle=jobs)
    body = (
        f'<h1 data-testid="hero__pageTitle"><span>{html.escape(p["name"])}</span></h1>'
        f"{_json_script(next_data, '__NEXT_DATA__')}"
    )
    return _page(f"{p['name']} - IMDb", _json_script(ld), body, padding_kb, f"/name/{code}/")


def _person_classic(p: dict, base: str, padding_kb: int) -> bytes:
    code = f"nm{p['id']:07d}"
    token = p["image_token"]
    img = (
        f'<img id="name-poster" alt="{html.escape(p["name"])} Picture" '
        f'src="{image_url(base, token, "UY317_CR27,0,214,317_AL_")}" itemprop="image" />'
        if token
        else ""
    )
    jobs = "".join(
        f'<a href="#{prof}"><span class="itemprop" itemprop="jobTitle">{prof.title()}</span></a>'
        for prof in p["professions"]
    )
    body = (
        f'<div itemscope itemtype="http://schema.org/Person"><h1 class="header"><span class="itemprop" '
        f'itemprop="name">{html.escape(p["name"])}</span></h1><div class="infobar" id="name-job-categories">'
        f'{jobs}</div><div class="image">{img}</div></div>{_classic_strip(p, base)}'
    )
    return _page(f"{p['name']} - IMDb", "", body, padding_kb, f"/name/{code}/")


def _person_mobile(p: dict, base: str, padding_kb: int) -> bytes:
    """The 2016-17 m.imdb.com layout: professions as plain text under the name."""
    code = f"nm{p['id']:07d}"
    token = p["image_token"]
    img = (
        f'<a href="/name/{code}/mediaviewer/rm{p["id"]}?ref_=m_nm_ov_ph"\nclass="media-left" > <img id="name-poster"\n'
        f'class="media-object"\nalt="{html.escape(p["name"])} Picture"\n'
        f'src="{image_url(base, token, "UY132_CR1,0,89,132_AL_")}"\nitemprop="image" />\n</a>'
        if token
        else ""
    )
    jobs = '<span class="text-muted"> | </span>\n'.join(prof.title() for prof in p["professions"])
    body = (
        f'<section id="name-overview"><h1>{html.escape(p["name"])}</h1>\n<p>\n{jobs}\n</p>'
        f'<div class="media">{img}</div></section><hr />{_mobile_strip(p, base)}'
    )
    return _page(f"{p['name']} - IMDb", "", body, padding_kb, f"/name/{code}/")


def not_found_page() -> bytes:
    return _page(
        "404 Error - IMDb",
        "",
        '<div class="error_message"><h1>The requested URL was not found on our server.</h1></div>',
        2,
    )


def challenge_page() -> bytes:
    """The AWS WAF JavaScript challenge: scripts and no page data at all."""
    return (
        b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title></title>'
        b'<script type="text/javascript">window.awsWafCookieDomainList = [];'
        b'window.gokuProps = {"key":"sample","iv":"sample","context":"sample"};</script>'
        b'<script src="https://sample.token.awswaf.com/sample/challenge.js"></script></head>'
        b'<body><div id="challenge-container"></div><noscript>JavaScript is disabled</noscript></body></html>'
    )


ROBOTS_TXT = b"""User-agent: *
Allow: /title/
Allow: /name/
Allow: /images/
Disallow: /search/
Disallow: /ap/
"""
