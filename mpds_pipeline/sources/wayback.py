"""The Wayback Machine behind the same archive interface as Common Crawl.

It reads the Wayback CDX index, fetches raw captures, and finds an archived copy of an
image whose live URL no longer answers. How the Wayback answers: docs/sources-archives.md.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from ..net.client import FetchResponse, PoliteClient
from .captures import Capture, page_id
from .common_crawl import IndexAnswer, describe_answer

PAGE_LIMIT = 5000  # CDX rows per request
_FIELDS = ("urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length")
# Where IMDb served images over the years; an image key (MV5B...) is the same on each.
IMAGE_HOSTS = ("m.media-amazon.com", "ia.media-imdb.com", "images-na.ssl-images-amazon.com")


def parse_cdx_rows(content: bytes) -> tuple[list[dict], str | None]:
    """(rows as dicts by the header row's names, the resume key if the answer has one)."""
    if not content.strip():
        return [], None
    data = json.loads(content)
    if not isinstance(data, list) or not data:
        return [], None
    header, rows, resume = [str(h) for h in data[0]], [], None
    body = data[1:]
    for n, row in enumerate(body):
        if not row:  # the separator before the resume key
            if n + 1 < len(body) and body[n + 1]:
                resume = str(body[n + 1][0])
            break
        rows.append(dict(zip(header, row)))
    return rows, resume


def captures_from_rows(rows: list[dict], kind: str | None, lo: int = 1, hi: int = 10**9) -> list[Capture]:
    """Captures of ``kind`` main pages with ids ``lo..hi`` (``kind`` None: every row, id 0)."""
    captures: list[Capture] = []
    for row in rows:
        url = str(row.get("original", ""))
        item_id = page_id(kind, url) if kind else 0
        if item_id is None or (kind and not lo <= item_id <= hi):
            continue
        status = str(row.get("statuscode", ""))
        length = str(row.get("length", ""))
        captures.append(
            Capture(
                source="wayback",
                kind=kind or "image",
                id=item_id,
                url=url,
                timestamp=str(row.get("timestamp", "")),
                status=int(status) if status.isdigit() else None,
                mime=str(row.get("mimetype", "")),
                digest=str(row.get("digest", "")).upper(),
                length=int(length) if length.isdigit() else None,
            )
        )
    return captures


def cdx_url(wayback_url: str, url: str, *, resume_key: str | None = None, **extra: str) -> str:
    params = {"url": url, "output": "json", "fl": ",".join(_FIELDS), **extra}
    if resume_key:
        params["resumeKey"] = resume_key
    return f"{wayback_url.rstrip('/')}/cdx/search/cdx?{urlencode(params, safe='*/:,')}"


async def query_prefix(
    client: PoliteClient, wayback_url: str, kind: str, prefix: str, lo: int, hi: int, *, limit: int = PAGE_LIMIT
) -> IndexAnswer:
    """Every 200 capture of ``kind`` main pages with ids ``lo..hi`` under ``prefix``,
    page by page through resume keys."""
    answer = IndexAnswer()
    resume: str | None = None
    while True:
        resp = await client.fetch(
            cdx_url(
                wayback_url,
                f"{prefix}*",
                resume_key=resume,
                filter="statuscode:200",
                showResumeKey="true",
                limit=str(limit),
            )
        )
        answer.requests += 1
        if resp.status_code in (403, 404):
            return answer  # excluded from the archive, or nothing there: no captures
        if resp.status_code != 200:
            answer.error, answer.unreachable = f"Wayback CDX: {describe_answer(resp)}", resp.status_code is None
            return answer
        try:
            rows, resume = parse_cdx_rows(resp.content)
        except ValueError as exc:
            answer.error = f"Wayback CDX: not JSON ({exc})"
            return answer
        answer.captures.extend(captures_from_rows(rows, kind, lo, hi))
        if not resume:
            return answer


def replay_url(wayback_url: str, capture: Capture) -> str:
    """The raw (``id_``) capture: the payload as archived, without the Wayback's banner."""
    return f"{wayback_url.rstrip('/')}/web/{capture.timestamp}id_/{capture.url}"


async def fetch_capture(client: PoliteClient, wayback_url: str, capture: Capture, max_bytes: int) -> FetchResponse:
    return await client.fetch(replay_url(wayback_url, capture), max_bytes=max_bytes)


def image_url_variants(image_url: str) -> list[str]:
    """``image_url`` as asked, then the same path on IMDb's other image hosts."""
    parts = urlsplit(image_url)
    host = (parts.hostname or "").lower()
    variants = [image_url]
    if host in IMAGE_HOSTS:
        variants += [parts._replace(netloc=other).geturl() for other in IMAGE_HOSTS if other != host]
    return variants


async def find_image_capture(client: PoliteClient, wayback_url: str, image_url: str) -> Capture | None:
    """The newest archived HTTP 200 image capture of ``image_url`` (or of the same image
    key on another IMDb image host), or None when the Wayback Machine has none."""
    for variant in image_url_variants(image_url):
        resp = await client.fetch(cdx_url(wayback_url, variant, filter="statuscode:200", limit="-5"))
        if resp.status_code != 200:
            continue
        try:
            rows, _ = parse_cdx_rows(resp.content)
        except ValueError:
            continue
        images = [c for c in captures_from_rows(rows, None) if c.status == 200 and c.mime.startswith("image/")]
        if images:
            return max(images, key=lambda c: c.timestamp)
    return None


async def fetch_archived_image(
    client: PoliteClient, wayback_url: str, image_url: str, max_bytes: int
) -> tuple[Capture, FetchResponse] | None:
    """An image whose live URL no longer answers, from the Wayback Machine: the newest
    archived 200 capture (``find_image_capture``) fetched raw. None when none is archived
    or the raw capture does not answer 200; the caller verifies the bytes as any image
    and records ``replay_url(capture)`` as where they came from."""
    capture = await find_image_capture(client, wayback_url, image_url)
    if capture is None:
        return None
    resp = await client.fetch(replay_url(wayback_url, capture), max_bytes=max_bytes)
    if resp.status_code != 200 or resp.error is not None:
        return None
    return capture, resp


async def archived_image_urls(client: PoliteClient, wayback_url: str, image_urls: list[str]) -> dict[str, str]:
    """image URL -> the raw-capture URL of its newest archived copy, for the images whose
    live URL no longer answers (one CDX query per URL and host variant, at the Wayback
    host's rate). A download can fetch these like any image URL, and its manifest then
    names the archive as the source (``web.archive.org/web/<ts>id_/<url>``)."""
    found: dict[str, str] = {}
    for url in dict.fromkeys(image_urls):
        capture = await find_image_capture(client, wayback_url, url)
        if capture is not None:
            found[url] = replay_url(wayback_url, capture)
    return found
