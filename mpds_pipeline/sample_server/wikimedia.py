"""Wikidata and Wikimedia Commons as the sample server plays them.

The query service, the Wikidata and Commons APIs, the files and their pages, in the
shapes of the real answers, over a deterministic sample world of items, posters,
portraits and licences. See docs/licence-clean.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, quote, unquote

from .content import PERSON_ID_RANGE, image_token, person_name, sample_person, sample_title
from .images import render_jpeg

TITLE_QID_BASE = 10_000_000
PERSON_QID_BASE = 20_000_000
_VALUES_RE = re.compile(r'"((?:tt|nm)\d{7,9})"')
_POSTER_RE = re.compile(r"^Poster of tt(\d+)\.jpg$")
_PORTRAIT_RE = re.compile(r"^Portrait of nm(\d+)\.jpg$")
_PHOTO_RE = re.compile(r"^nm(\d+) photo (\d+)\.jpg$")
_THUMB_RE = re.compile(r"^/commons/thumb/(\d+)px-(.+)$")
POSTER_LICENCES = (
    {"LicenseShortName": "Fair use", "UsageTerms": "Non-free: fair use only", "Copyrighted": "True"},
    {},  # no licence metadata at all
    {
        "LicenseShortName": "CC BY-SA 4.0",
        "License": "cc-by-sa-4.0",
        "LicenseUrl": "https://creativecommons.org/licenses/by-sa/4.0",
        "UsageTerms": "Creative Commons Attribution-Share Alike 4.0",
        "AttributionRequired": "true",
    },
    {
        "LicenseShortName": "Public domain",
        "License": "pd",
        "UsageTerms": "Public domain",
        "AttributionRequired": "false",
    },
    {
        "LicenseShortName": "CC0",
        "License": "cc0",
        "LicenseUrl": "http://creativecommons.org/publicdomain/zero/1.0/deed.en",
        "UsageTerms": "Creative Commons Zero, Public Domain Dedication",
        "AttributionRequired": "false",
    },
    {
        "LicenseShortName": "CC BY 4.0",
        "License": "cc-by-4.0",
        "LicenseUrl": "https://creativecommons.org/licenses/by/4.0",
        "UsageTerms": "Creative Commons Attribution 4.0",
        "AttributionRequired": "true",
    },
)
PHOTO_LICENCE = {
    "LicenseShortName": "CC BY 2.0",
    "License": "cc-by-2.0",
    "LicenseUrl": "https://creativecommons.org/licenses/by/2.0",
    "UsageTerms": "Creative Commons Attribution 2.0",
    "AttributionRequired": "true",
}
NON_FREE_PHOTO = {"LicenseShortName": "All rights reserved", "Copyrighted": "True", "Restrictions": "personality"}


def title_item(title_id: int, seed: int = 0) -> dict | None:
    """The Wikidata item of a title: qid, label, description, poster file (or None)."""
    truth = sample_title(title_id, seed)
    if truth["status"] != "ok":
        return None
    has_poster = bool(truth["poster_token"]) and not truth["small_poster"] and title_id % 5 != 2
    return {
        "qid": f"Q{TITLE_QID_BASE + title_id}",
        "imdb": f"tt{title_id:07d}",
        "label": truth["title"],
        "description": f"{truth['year']} film",
        "poster": f"Poster of tt{title_id:07d}.jpg" if has_poster else None,
        "image": None,
        "category": None,
    }


def person_item(person_id: int, seed: int = 0) -> dict | None:
    """The item of an actor with a photo: portrait (P18) and category of solo photos (P373)."""
    person = sample_person(person_id, seed)
    if person["status"] != "ok" or not person["is_actor"] or not person["image_token"] or person["small_image"]:
        return None
    return {
        "qid": f"Q{PERSON_QID_BASE + person_id}",
        "imdb": f"nm{person_id:07d}",
        "label": person["name"],
        "description": "actor",
        "poster": None,
        "image": f"Portrait of nm{person_id:07d}.jpg",
        "category": person["name"],
    }


def category_files(name: str, seed: int = 0) -> list[str]:
    """The files of a person's category: their solo photos."""
    for person_id in range(PERSON_ID_RANGE[0], PERSON_ID_RANGE[1] + 1):
        if person_name(person_id, seed) == name:
            person = sample_person(person_id, seed)
            photos = person.get("photos", []) + person.get("gallery", [])
            return [f"nm{person_id:07d} photo {i}.jpg" for i, p in enumerate(photos) if p["kind"] == "self"]
    return []


def file_truth(name: str, seed: int = 0) -> dict | None:
    """What a file is: ``token`` (what the sample server draws), ``licence`` (extmetadata
    fields), ``artist``, ``title_id`` (a poster's title), or None when no such file."""
    if match := _POSTER_RE.match(name):
        title_id = int(match.group(1))
        item = title_item(title_id, seed)
        if not item or item["poster"] != name:
            return None
        return {
            "token": image_token("title", title_id, seed, False),
            "licence": POSTER_LICENCES[title_id % 6],
            "artist": f'<a href="//commons.wikimedia.org/wiki/User:Studio{title_id % 9}">Studio {title_id % 9}</a>',
            "title_id": title_id,
            "size": (400, 600),
        }
    if match := _PORTRAIT_RE.match(name):
        person_id = int(match.group(1))
        if not person_item(person_id, seed):
            return None
        return {
            "token": image_token("person", person_id, seed, False),
            "licence": NON_FREE_PHOTO if person_id % 7 == 0 else PHOTO_LICENCE,
            "artist": f"<span>Photographer {person_id % 5}</span>",
            "size": (320, 440),
        }
    if match := _PHOTO_RE.match(name):
        person_id, index = int(match.group(1)), int(match.group(2))
        if name not in category_files(person_name(person_id, seed), seed):
            return None
        from .content import photo_token

        return {
            "token": photo_token(person_id, index, seed),
            "licence": NON_FREE_PHOTO if index % 4 == 3 else PHOTO_LICENCE,
            "artist": f"<ul><li>Photographer {index}</li></ul>",
            "size": (640, 480),
        }
    return None


def _json(server, body: dict, headers: tuple[tuple[str, str], ...] = ()):
    from .server import _Reply

    return _Reply(200, json.dumps(body).encode(), "application/json; charset=utf-8", headers)


def _maxlag(server):
    """The maxlag error of a lagged wiki, if one is due."""
    if getattr(server, "wikimedia_maxlag", 0) <= 0:
        return None
    server.wikimedia_maxlag -= 1
    return _json(
        server,
        {
            "error": {
                "code": "maxlag",
                "info": "Waiting for 10.64.48.35: 7 seconds lagged.",
                "host": "10.64.48.35",
                "lag": 7,
                "type": "db",
            }
        },
        (("Retry-After", str(getattr(server, "wikimedia_retry_after", "1"))), ("X-Database-Lag", "7")),
    )


def _entity(item: dict) -> dict:
    def claim(prop: str, value: str, datatype: str = "string") -> list[dict]:
        return [
            {
                "mainsnak": {
                    "snaktype": "value",
                    "property": prop,
                    "datavalue": {"value": value, "type": "string"},
                    "datatype": datatype,
                },
                "type": "statement",
                "rank": "normal",
            }
        ]

    claims = {"P345": claim("P345", item["imdb"], "external-id")}
    if item["poster"]:
        claims["P3383"] = claim("P3383", item["poster"], "commonsMedia")
    if item["image"]:
        claims["P18"] = claim("P18", item["image"], "commonsMedia")
    if item["category"]:
        claims["P373"] = claim("P373", item["category"])
    return {
        "type": "item",
        "id": item["qid"],
        "labels": {"en": {"language": "en", "value": item["label"]}},
        "descriptions": {"en": {"language": "en", "value": item["description"]}},
        "claims": claims,
    }


def _item_of_qid(qid: str, seed: int) -> dict | None:
    number = int(qid[1:]) if re.fullmatch(r"Q\d+", qid) else 0
    if PERSON_QID_BASE < number < PERSON_QID_BASE + 10_000_000:
        return person_item(number - PERSON_QID_BASE, seed)
    if TITLE_QID_BASE < number < PERSON_QID_BASE:
        return title_item(number - TITLE_QID_BASE, seed)
    return None


def _imageinfo(name: str, base: str, width: int | None, seed: int) -> dict:
    title = "File:" + name
    truth = file_truth(name, seed)
    if truth is None:
        return {"ns": 6, "title": title, "missing": True, "imagerepository": ""}
    w, h = truth["size"]
    underscored = quote(name.replace(" ", "_"))
    info = {
        "timestamp": "2024-01-02T03:04:05Z",
        "size": 40_000,
        "width": w,
        "height": h,
        "sha1": hashlib.sha1(name.encode()).hexdigest(),
        "mime": "image/jpeg",
        "url": f"{base}/commons/files/{underscored}",
        "descriptionurl": f"{base}/commons/wiki/File:{underscored}",
        "descriptionshorturl": f"{base}/commons/w/index.php?curid=1",
        "extmetadata": {
            "Artist": {"value": truth["artist"], "source": "commons-desc-page"},
            "Credit": {"value": "<span>Own work</span>", "source": "commons-desc-page", "hidden": ""},
            **{k: {"value": v, "source": "commons-desc-page", "hidden": ""} for k, v in truth["licence"].items()},
        },
    }
    if width and width < w:
        info.update(
            thumburl=f"{base}/commons/thumb/{width}px-{underscored}",
            thumbwidth=width,
            thumbheight=round(h * width / w),
        )
    return {"ns": 6, "title": title, "imagerepository": "local", "imageinfo": [info]}


def _base(headers: Mapping[str, str], server) -> str:
    return f"http://{headers.get('Host', server.address)}"


def route(server, path: str, query: str, headers: Mapping[str, str]):
    """The extra route of SampleImdbServer for Wikidata, the query service and Commons."""
    from .server import _Reply

    if not path.startswith(("/sparql", "/wikidata/", "/commons/")):
        return None
    seed = server.seed
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if path == "/sparql":
        ids = _VALUES_RE.findall(params.get("query", ""))
        bindings = []
        for imdb in dict.fromkeys(ids):
            number = int(imdb[2:])
            item = title_item(number, seed) if imdb.startswith("tt") else person_item(number, seed)
            if item:
                bindings.append(
                    {
                        "item": {"type": "uri", "value": f"http://www.wikidata.org/entity/{item['qid']}"},
                        "imdb": {"type": "literal", "value": imdb},
                    }
                )
        body = {"head": {"vars": ["item", "imdb"]}, "results": {"bindings": bindings}}
        return _Reply(200, json.dumps(body).encode(), "application/sparql-results+json; charset=utf-8")
    if path == "/wikidata/w/api.php":
        lagged = _maxlag(server)
        if lagged is not None:
            return lagged
        if params.get("action") != "wbgetentities":
            return _json(server, {"error": {"code": "badvalue", "info": "only wbgetentities is played here"}})
        qids = [q for q in params.get("ids", "").split("|") if q]
        if len(qids) > 50:
            return _json(server, {"error": {"code": "toomanyvalues", "info": "Too many values supplied: limit 50"}})
        entities = {}
        for qid in qids:
            item = _item_of_qid(qid, seed)
            entities[qid] = _entity(item) if item else {"id": qid, "missing": ""}
        return _json(server, {"entities": entities, "success": 1})
    if path == "/commons/w/api.php":
        lagged = _maxlag(server)
        if lagged is not None:
            return lagged
        width = int(params["iiurlwidth"]) if params.get("iiurlwidth", "").isdigit() else None
        base = _base(headers, server)
        if params.get("generator") == "categorymembers":
            category = params.get("gcmtitle", "").removeprefix("Category:")
            names = category_files(category, seed)[: int(params.get("gcmlimit", "10") or 10)]
        else:
            names = [t.removeprefix("File:") for t in params.get("titles", "").split("|") if t]
            if len(names) > 50:
                return _json(server, {"error": {"code": "toomanyvalues", "info": "Too many values: limit 50"}})
        pages = [_imageinfo(name.replace("_", " "), base, width, seed) for name in names]
        return _json(server, {"batchcomplete": True, "query": {"pages": pages}})
    if path.startswith("/commons/wiki/File:"):
        name = unquote(path.removeprefix("/commons/wiki/File:")).replace("_", " ")
        if file_truth(name, seed) is None:
            return _Reply(404, b"<html><body>No such file</body></html>")
        return _Reply(200, f"<html><body><h1>File:{name}</h1></body></html>".encode())
    width = None
    if match := _THUMB_RE.match(path):
        width, name = int(match.group(1)), unquote(match.group(2))
    elif path.startswith("/commons/files/"):
        name = unquote(path.removeprefix("/commons/files/"))
    else:
        return _Reply(404, b"<html><body>Not found</body></html>")
    truth = file_truth(name.replace("_", " "), seed)
    if truth is None:
        return _Reply(404, b"<html><body>No such file</body></html>")
    jpeg = render_jpeg(truth["token"], f"UX{width}" if width else "")
    optout = server.poster_optouts.get(truth.get("title_id"), ()) if truth.get("title_id") else ()
    return _Reply(200, jpeg, "image/jpeg", tuple(optout))
