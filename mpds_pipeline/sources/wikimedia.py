"""Wikidata + Commons for a set of movies and actors: which items they are, which
Commons files they link to (posters P3383, portraits P18, category files P373), and
each file's licence and author. One run of one client; plain tables out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from ..base.progress import Progress
from ..base.settings import setting
from ..net.client import PoliteClient
from ..net.client_settings import ClientSettings
from .commons import (
    COMMONS_FILE_COLUMNS,
    DEFAULT_ALLOWLIST,
    DEFAULT_THUMB_WIDTH,
    CommonsResult,
    check_thumb_width,
    file_title,
    read_category,
    read_files,
)
from .mediawiki import api_url, contact_warning, wikimedia_client_settings
from .wikidata import lookup_imdb_ids

ITEM_COLUMNS = [
    "kind",  # "title" or "person"
    "id",
    "imdb_id",
    "qid",
    "label",
    "description",
    "poster_file",  # P3383 (titles): "File:…"
    "image_file",  # P18: "File:…"
    "commons_category",  # P373
    "category_files",  # the category's files asked ("File:…")
]


@dataclass(frozen=True)
class WikimediaSettings:
    wikidata_url: str = setting(
        "https://www.wikidata.org", "Wikidata (its API is <url>/w/api.php)", env="MPDS_WIKIDATA_URL"
    )
    sparql_url: str = setting(
        "https://query.wikidata.org/sparql",
        "the Wikidata query service",
        env="MPDS_WIKIDATA_SPARQL_URL",
        config_name="wikidata_sparql_url",
    )
    commons_url: str = setting(
        "https://commons.wikimedia.org", "Wikimedia Commons (its API is <url>/w/api.php)", env="MPDS_COMMONS_URL"
    )
    allowlist: tuple[str, ...] = setting(
        DEFAULT_ALLOWLIST,
        "licence families (every version) a Commons file needs for the licence-clean edition: "
        "public-domain, cc0, cc-by, cc-by-sa, or others such as cc-by-nc",
        env="MPDS_LICENCE_ALLOWLIST",
        config_name="licence_allowlist",
    )
    thumb_width: int = setting(
        DEFAULT_THUMB_WIDTH,
        "width of the Commons thumbnails downloaded; one of Wikimedia's standard widths "
        "(commons.STANDARD_THUMB_WIDTHS)",
    )
    category_files: int = 6  # files read per actor category (the face step keeps 3-5)
    maxlag_min_wait_s: float = 5.0
    rate_per_second: float = setting(
        2.0,
        "requests per second to each Wikimedia API host (requests go in series, as its API etiquette asks)",
        env="MPDS_WIKIMEDIA_RATE",
        config_name="wikimedia_rate",
    )

    def __post_init__(self):
        check_thumb_width(self.thumb_width)


@dataclass
class WikimediaResult:
    items: pd.DataFrame  # ITEM_COLUMNS, one row per movie/actor found on Wikidata
    files: pd.DataFrame  # COMMONS_FILE_COLUMNS, one row per file asked
    asked: dict[str, int] = field(default_factory=dict)  # kind -> ids asked
    requests_by_host: dict[str, int] = field(default_factory=dict)
    maxlag_waits: int = 0
    warnings: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        decisions = Counter(self.files["decision"]) if len(self.files) else Counter()
        found = Counter(self.items["kind"]) if len(self.items) else Counter()
        return {
            **{f"{kind}_ids_asked": n for kind, n in self.asked.items()},
            **{f"{kind}_items_found": found.get(kind, 0) for kind in self.asked},
            "files": len(self.files),
            "files_kept": decisions.get("kept", 0),
            **{f"files_refused_{k}": v for k, v in sorted(decisions.items()) if k != "kept"},
            "maxlag_waits": self.maxlag_waits,
            "requests": sum(self.requests_by_host.values()),
        }


def collect_wikimedia(
    movie_ids: Iterable[int],
    actor_ids: Iterable[int],
    client_settings: ClientSettings,
    settings: WikimediaSettings = WikimediaSettings(),
    log: Callable[[str], None] | None = None,
) -> WikimediaResult:
    """Look the movies (``tt…``) and actors (``nm…``) up on Wikidata and read the
    metadata of every Commons file they link to."""
    movies, actors = sorted(set(int(i) for i in movie_ids)), sorted(set(int(i) for i in actor_ids))
    endpoints = [settings.wikidata_url, settings.sparql_url, settings.commons_url]
    client_settings = wikimedia_client_settings(client_settings, endpoints, settings.rate_per_second)
    warning = contact_warning(client_settings, endpoints)
    if warning and log is not None:
        log(f"WARNING: {warning}")
    return asyncio.run(_collect(movies, actors, client_settings, settings, log, [warning] if warning else []))


async def _collect(movies, actors, client_settings, settings: WikimediaSettings, log, warnings) -> WikimediaResult:
    imdb_ids = [f"tt{i:07d}" for i in movies] + [f"nm{i:07d}" for i in actors]
    commons_api = api_url(settings.commons_url)
    async with PoliteClient(client_settings, log=log) as client:
        lookup = await lookup_imdb_ids(
            client,
            imdb_ids,
            sparql_endpoint=settings.sparql_url,
            api_endpoint=api_url(settings.wikidata_url),
            maxlag_min_wait_s=settings.maxlag_min_wait_s,
            log=log,
        )
        rows = []
        for imdb in imdb_ids:
            item = lookup.item_for(imdb)
            if item is None:
                continue
            rows.append(
                {
                    "kind": "title" if imdb.startswith("tt") else "person",
                    "id": int(imdb[2:]),
                    "imdb_id": imdb,
                    "qid": item.qid,
                    "label": item.label,
                    "description": item.description,
                    "poster_file": file_title(item.posters[0]) if item.posters and imdb.startswith("tt") else None,
                    "image_file": file_title(item.images[0]) if item.images else None,
                    "commons_category": item.commons_category if imdb.startswith("nm") else None,
                    "category_files": [],
                }
            )
        commons = CommonsResult()
        # A film's P18 is a still, not its poster: only people's P18 is read.
        names = [r["poster_file"] for r in rows if r["poster_file"]]
        names += [r["image_file"] for r in rows if r["kind"] == "person" and r["image_file"]]
        commons = await read_files(
            client,
            commons_api,
            names,
            allowlist=settings.allowlist,
            thumb_width=settings.thumb_width,
            result=commons,
            maxlag_min_wait_s=settings.maxlag_min_wait_s,
            log=log,
        )
        with_category = [r for r in rows if r["commons_category"]]
        progress = Progress("commons categories", len(with_category), log, unit="categories")
        with progress:
            for row in with_category:
                await read_category(
                    client,
                    commons_api,
                    row["commons_category"],
                    limit=settings.category_files,
                    allowlist=settings.allowlist,
                    thumb_width=settings.thumb_width,
                    result=commons,
                    maxlag_min_wait_s=settings.maxlag_min_wait_s,
                    log=log,
                )
                row["category_files"] = commons.category_files.get(row["commons_category"], [])
                progress.update()
        requests = client.requests_by_host()
    files = pd.DataFrame([f.row() for f in commons.files.values()], columns=COMMONS_FILE_COLUMNS)
    return WikimediaResult(
        items=pd.DataFrame(rows, columns=ITEM_COLUMNS),
        files=files.drop_duplicates("file_title").reset_index(drop=True),
        asked={"title": len(movies), "person": len(actors)},
        requests_by_host=requests,
        maxlag_waits=lookup.api.maxlag_waits + commons.api.maxlag_waits,
        warnings=warnings,
    )
