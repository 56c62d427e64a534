"""Wikidata (CC0): IMDb ids to items, and what the items link to on Commons.

Two batched steps through the polite client: the query service maps IMDb ids to items,
then the API reads those items' posters, images and Commons categories. See
docs/licence-clean.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlencode

from ..base.progress import Progress
from ..net.client import PoliteClient
from .mediawiki import ApiCounters, MediaWikiError, api_get

SPARQL_BATCH = 200
ENTITIES_BATCH = 50  # wbgetentities' limit for clients without the apihighlimits right
IMDB_ID = "P345"
FILM_POSTER = "P3383"
IMAGE = "P18"
COMMONS_CATEGORY = "P373"
_IMDB_RE = re.compile(r"^(tt|nm)\d{7,9}$")
_ENTITY_RE = re.compile(r"/entity/(Q\d+)$")
_FILEPATH_RE = re.compile(r"/Special:FilePath/(.+)$")


@dataclass
class WikidataItem:
    qid: str
    imdb_ids: list[str] = field(default_factory=list)
    label: str | None = None
    description: str | None = None
    posters: list[str] = field(default_factory=list)  # P3383 file names, best rank first
    images: list[str] = field(default_factory=list)  # P18 file names, best rank first
    commons_category: str | None = None  # P373, without the "Category:" prefix


def sparql_query(imdb_ids: Iterable[str]) -> str:
    """Items with these IMDb ids (only ids of the ``tt…``/``nm…`` form are sent)."""
    values = " ".join(f'"{i}"' for i in imdb_ids if _IMDB_RE.match(i))
    return f"SELECT ?item ?imdb WHERE {{ VALUES ?imdb {{ {values} }} ?item wdt:{IMDB_ID} ?imdb . }}"


def sparql_url(endpoint: str, query: str) -> str:
    return f"{endpoint}?{urlencode({'query': query, 'format': 'json'})}"


def parse_sparql_bindings(data: dict) -> list[dict[str, str]]:
    """Rows of a SPARQL 1.1 JSON result as ``{var: value}``; blank nodes are left out
    (they name nothing we can look up), and so is a row of nothing else."""
    rows = []
    for binding in (data.get("results") or {}).get("bindings") or []:
        row = {var: cell.get("value") for var, cell in binding.items() if cell.get("type") != "bnode"}
        if row:
            rows.append(row)
    return rows


def entity_id(uri: str | None) -> str | None:
    """``http://www.wikidata.org/entity/Q42`` -> ``Q42``."""
    match = _ENTITY_RE.search(uri or "")
    return match.group(1) if match else None


def commons_file_name(value: str | None) -> str | None:
    """A file name from an API value or a query-service ``Special:FilePath`` URI, with
    spaces (Commons' canonical form), without the ``File:`` prefix."""
    if not value:
        return None
    match = _FILEPATH_RE.search(value)
    name = unquote(match.group(1)) if match else value
    name = name.removeprefix("File:").replace("_", " ").strip()
    return name or None


def parse_imdb_mapping(data: dict) -> dict[str, list[str]]:
    """IMDb id -> item ids from the mapping query's result (an IMDb id on two items keeps both)."""
    mapping: dict[str, list[str]] = {}
    for row in parse_sparql_bindings(data):
        qid, imdb = entity_id(row.get("item")), row.get("imdb")
        if qid and imdb and qid not in mapping.setdefault(imdb, []):
            mapping[imdb].append(qid)
    return mapping


def _claim_values(claims: dict, prop: str) -> list[str]:
    """String values of a property, preferred rank first, then normal; deprecated never."""
    ranked = []
    for claim in claims.get(prop) or []:
        snak = claim.get("mainsnak") or {}
        value = (snak.get("datavalue") or {}).get("value")
        rank = claim.get("rank", "normal")
        if snak.get("snaktype", "value") != "value" or not isinstance(value, str) or rank == "deprecated":
            continue
        ranked.append((0 if rank == "preferred" else 1, value))
    return [value for _, value in sorted(ranked, key=lambda pair: pair[0])]


def _text(entity: dict, key: str, language: str) -> str | None:
    value = (entity.get(key) or {}).get(language)
    return value.get("value") if isinstance(value, dict) else None


def parse_entity(entity: dict, language: str = "en") -> WikidataItem:
    """One entity of ``wbgetentities`` (or a bare entity document)."""
    claims = entity.get("claims") or {}
    categories = _claim_values(claims, COMMONS_CATEGORY)
    return WikidataItem(
        qid=entity.get("id") or entity.get("title") or "",
        imdb_ids=_claim_values(claims, IMDB_ID),
        label=_text(entity, "labels", language),
        description=_text(entity, "descriptions", language),
        posters=[n for n in (commons_file_name(v) for v in _claim_values(claims, FILM_POSTER)) if n],
        images=[n for n in (commons_file_name(v) for v in _claim_values(claims, IMAGE)) if n],
        commons_category=categories[0].removeprefix("Category:") if categories else None,
    )


def parse_entities(data: dict, language: str = "en") -> dict[str, WikidataItem]:
    """Item id -> item of a ``wbgetentities`` answer; missing items are left out."""
    items = {}
    for qid, entity in (data.get("entities") or {}).items():
        if isinstance(entity, dict) and "missing" not in entity:
            items[qid] = parse_entity({"id": qid, **entity}, language)
    return items


@dataclass
class WikidataLookup:
    items: dict[str, WikidataItem]  # item id -> item
    by_imdb: dict[str, list[str]]  # IMDb id -> item ids
    queries: int = 0
    api: ApiCounters = field(default_factory=ApiCounters)

    def item_for(self, imdb_id: str) -> WikidataItem | None:
        """The item of an IMDb id; with several, the first that has what we want."""
        found = [self.items[q] for q in self.by_imdb.get(imdb_id, []) if q in self.items]
        found.sort(key=lambda item: not (item.posters or item.images))
        return found[0] if found else None


async def lookup_imdb_ids(
    client: PoliteClient,
    imdb_ids: list[str],
    *,
    sparql_endpoint: str,
    api_endpoint: str,
    language: str = "en",
    sparql_batch: int = SPARQL_BATCH,
    maxlag_min_wait_s: float = 5.0,
    log: Callable[[str], None] | None = None,
) -> WikidataLookup:
    """Map ``imdb_ids`` to items (query service) and read the items (``wbgetentities``)."""
    by_imdb: dict[str, list[str]] = {}
    ids = list(dict.fromkeys(i for i in imdb_ids if _IMDB_RE.match(i)))
    queries = 0
    progress = Progress("wikidata ids", len(ids), log, unit="ids")
    for start in range(0, len(ids), sparql_batch):
        resp = await client.fetch(
            sparql_url(sparql_endpoint, sparql_query(ids[start : start + sparql_batch])),
            headers={"Accept": "application/sparql-results+json"},
        )
        queries += 1
        progress.update(len(ids[start : start + sparql_batch]))
        if resp.error is not None or resp.status_code != 200:
            raise MediaWikiError(f"query service: {resp.error or f'HTTP {resp.status_code}'} ({resp.url[:120]})")
        try:
            by_imdb.update(parse_imdb_mapping(json.loads(resp.content)))
        except ValueError as error:
            raise MediaWikiError(f"query service: the answer is not JSON ({error})") from error
    progress.close()
    qids = list(dict.fromkeys(q for qs in by_imdb.values() for q in qs))
    lookup = WikidataLookup({}, by_imdb, queries)
    progress = Progress("wikidata items", len(qids), log, unit="items")
    for start in range(0, len(qids), ENTITIES_BATCH):
        data = await api_get(
            client,
            api_endpoint,
            {
                "action": "wbgetentities",
                "ids": "|".join(qids[start : start + ENTITIES_BATCH]),
                "props": "labels|descriptions|claims",
                "languages": language,
            },
            min_wait_s=maxlag_min_wait_s,
            counters=lookup.api,
            log=log,
        )
        lookup.items.update(parse_entities(data, language))
        progress.update(len(qids[start : start + ENTITIES_BATCH]))
    progress.close()
    return lookup
