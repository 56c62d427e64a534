"""Common Crawl: its CDX index server and its WARC files, read politely.

It parses the crawl list and the index's answers, pages through them, and fetches each
capture with one Range request. How the index answers and what is retried:
docs/sources-archives.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson

from ..net.client import FetchResponse, PoliteClient
from .captures import Capture, page_id

NO_CAPTURES = "No Captures found"


class CommonCrawlIndexError(RuntimeError):
    """The index server did not answer usefully (after the client's retries)."""


@dataclass
class IndexAnswer:
    """What one prefix query gave: the captures of the ids asked, the requests it took,
    and ``error`` when the index could not answer (the ids stay unknown, not uncaptured)."""

    captures: list[Capture] = field(default_factory=list)
    requests: int = 0
    error: str | None = None
    unreachable: bool = False  # no HTTP answer at all: the host is down or the URL wrong


def parse_collinfo(content: bytes) -> list[dict]:
    """The crawls of ``collinfo.json`` in the order served (newest first), each a dict
    with at least ``id``; raises ValueError on anything else."""
    data = json.loads(content)
    if not isinstance(data, list) or not all(isinstance(c, dict) and "id" in c for c in data):
        raise ValueError("collinfo.json is not a list of crawls with an 'id'")
    return data


def parse_num_pages(content: bytes) -> int:
    """``showNumPages=true``'s answer: ``{"pages": N, "pageSize": 5, "blocks": M}`` (or a
    bare number, as some CDX servers answer)."""
    data = json.loads(content)
    pages = data.get("pages") if isinstance(data, dict) else data
    if not isinstance(pages, int) or pages < 0:
        raise ValueError(f"showNumPages answered {content[:200]!r}")
    return pages


def parse_cdx_lines(content: bytes, crawl: str | None, kind: str | None, lo: int = 1, hi: int = 10**9) -> list[Capture]:
    """The captures of ``kind`` main pages with ids in ``lo..hi`` among the index's JSON
    lines; other URLs (sub-pages, robots.txt, other hosts) and bad lines are skipped.
    ``kind`` None keeps every line (id 0)."""
    captures: list[Capture] = []
    for line in content.splitlines():
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            url = row["url"]
        except (ValueError, KeyError, TypeError):
            continue
        item_id = page_id(kind, url) if kind else 0
        if item_id is None or (kind and not lo <= item_id <= hi):
            continue
        try:
            captures.append(
                Capture(
                    source="common_crawl",
                    kind=kind or "any",
                    id=item_id,
                    url=url,
                    timestamp=str(row["timestamp"]),
                    status=int(row["status"]) if str(row.get("status", "")).isdigit() else None,
                    mime=row.get("mime-detected") or row.get("mime") or "",
                    digest=str(row.get("digest", "")).upper(),
                    length=int(row["length"]),
                    offset=int(row["offset"]),
                    filename=row["filename"],
                    crawl=crawl or _crawl_of(row["filename"]),
                )
            )
        except (KeyError, ValueError, TypeError):
            continue  # a line without where the record lies cannot be fetched
    return captures


def _crawl_of(filename: str) -> str | None:
    parts = filename.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "crawl-data" else None


def index_query_url(index_url: str, crawl: str, prefix: str, **extra: str) -> str:
    params = {"url": f"{prefix}*", "output": "json", "filter": "status:200", **extra}
    return f"{index_url.rstrip('/')}/{crawl}-index?{urlencode(params, safe='*/:')}"


def describe_answer(resp: FetchResponse) -> str:
    if resp.status_code is None:
        return resp.error or "no answer"
    text = resp.content[:200].decode("utf-8", "replace").strip()
    return f"HTTP {resp.status_code}" + (f": {text}" if text else "") + (f" ({resp.error})" if resp.error else "")


async def list_crawls(client: PoliteClient, index_url: str) -> list[str]:
    """Crawl ids of ``collinfo.json``, newest first; raises CommonCrawlIndexError when it cannot be read."""
    resp = await client.fetch(f"{index_url.rstrip('/')}/collinfo.json")
    if resp.status_code != 200:
        raise CommonCrawlIndexError(f"{index_url}/collinfo.json answered {describe_answer(resp)}")
    try:
        return [c["id"] for c in parse_collinfo(resp.content)]
    except ValueError as exc:
        raise CommonCrawlIndexError(f"{index_url}/collinfo.json: {exc}") from None


async def query_prefix(
    client: PoliteClient, index_url: str, crawl: str, kind: str, prefix: str, lo: int, hi: int
) -> IndexAnswer:
    """Every capture of ``kind`` main pages with ids ``lo..hi`` under ``prefix`` in one
    crawl: ``showNumPages`` first, then each page."""
    answer = IndexAnswer()
    resp = await client.fetch(index_query_url(index_url, crawl, prefix, showNumPages="true"))
    answer.requests += 1
    if resp.status_code == 404 and NO_CAPTURES.encode() in resp.content:
        return answer
    if resp.status_code != 200:
        answer.error, answer.unreachable = f"{crawl} index: {describe_answer(resp)}", resp.status_code is None
        return answer
    try:
        pages = parse_num_pages(resp.content)
    except ValueError as exc:
        answer.error = f"{crawl} index: {exc}"
        return answer
    for page in range(pages):
        resp = await client.fetch(index_query_url(index_url, crawl, prefix, page=str(page)))
        answer.requests += 1
        if resp.status_code == 404 and NO_CAPTURES.encode() in resp.content:
            break  # nothing (left) under this prefix
        if resp.status_code == 400:
            break  # past the last page: the count changed between the two questions
        if resp.status_code != 200:
            answer.error, answer.unreachable = (
                f"{crawl} index page {page}: {describe_answer(resp)}",
                resp.status_code is None,
            )
            break
        answer.captures.extend(parse_cdx_lines(resp.content, crawl, kind, lo, hi))
    return answer


async def fetch_record(client: PoliteClient, data_url: str, capture: Capture) -> FetchResponse:
    """The capture's gzip member, by one Range request (a 206 when all went well)."""
    start = capture.offset or 0
    end = start + (capture.length or 1) - 1
    return await client.fetch(
        f"{data_url.rstrip('/')}/{capture.filename}",
        headers={"Range": f"bytes={start}-{end}"},
        max_bytes=(capture.length or 0) + 1024,
    )
