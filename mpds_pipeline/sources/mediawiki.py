"""The MediaWiki Action API as Wikimedia asks bots to use it (Wikidata, Commons).

Every call goes through the polite client (rate, retries with Retry-After on 429/5xx)
and carries ``maxlag`` (API etiquette: 5 s): a lagged server answers HTTP 200 with
``{"error": {"code": "maxlag", ...}}`` and a ``Retry-After`` header, which is waited
out (at least ``min_wait_s``) and retried, a bounded number of times. Wikimedia's
User-Agent policy asks for a contact: ``contact_warning`` says so when none is set.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

from ..net.client import PoliteClient
from ..net.client_settings import ClientSettings, HostPolicy
from ..net.connections import parse_retry_after

DEFAULT_MAXLAG_S = 5  # what Wikimedia's API etiquette and Pywikibot use
MAX_LAG_WAITS = 6
WIKIMEDIA_HOST_SUFFIXES = ("wikidata.org", "wikimedia.org", "wikipedia.org")
# Wikimedia's API etiquette: requests in series, no parallel hammering; robots.txt
# governs crawlers of the sites' pages, not the API (its /w/ paths are disallowed to crawlers).
API_POLICY = HostPolicy(rate_per_second=2.0, concurrency=1, obey_robots=False, detect_waf=False)
FILES_POLICY = HostPolicy(rate_per_second=2.0, concurrency=2, obey_robots=True, detect_waf=False)
UPLOAD_URL = "https://upload.wikimedia.org"


class MediaWikiError(Exception):
    """An API answer that is not usable: an HTTP error, no JSON, or an API error code."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


@dataclass
class ApiCounters:
    calls: int = 0
    maxlag_waits: int = 0


def api_url(base_url: str) -> str:
    """``https://www.wikidata.org`` -> ``https://www.wikidata.org/w/api.php`` (a URL that
    already names api.php is kept)."""
    base = base_url.rstrip("/")
    return base if base.endswith(".php") else f"{base}/w/api.php"


def is_wikimedia_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == s or host.endswith("." + s) for s in WIKIMEDIA_HOST_SUFFIXES)


def contact_warning(settings: ClientSettings, urls: list[str]) -> str | None:
    """A warning when Wikimedia hosts are asked without a contact in the User-Agent."""
    wikimedia = [u for u in urls if is_wikimedia_host(u)]
    if settings.contact or not wikimedia:
        return None
    return (
        "MPDS_CONTACT is empty: Wikimedia's User-Agent policy asks every bot for a contact "
        f"(an e-mail or URL) and may block clients without one; set it before asking {', '.join(wikimedia)}"
    )


def wikimedia_client_settings(
    base: ClientSettings, urls: list[str], rate_per_second: float = API_POLICY.rate_per_second
) -> ClientSettings:
    """``base`` allowing each of ``urls``' hosts with the API policy (at ``rate_per_second``),
    and Commons' file host with the files policy."""
    settings = base
    for url in [UPLOAD_URL, *urls]:
        policy = FILES_POLICY if url == UPLOAD_URL else replace(API_POLICY, rate_per_second=rate_per_second)
        settings = settings.with_host(url, policy)
    return settings


async def api_get(
    client: PoliteClient,
    url: str,
    params: Mapping[str, str | int],
    *,
    maxlag: int = DEFAULT_MAXLAG_S,
    max_lag_waits: int = MAX_LAG_WAITS,
    min_wait_s: float = DEFAULT_MAXLAG_S,
    counters: ApiCounters | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """One API call (JSON, formatversion 2, ``maxlag``), a maxlag answer waited out."""
    query = {**params, "format": "json", "formatversion": 2, "maxlag": maxlag}
    target = f"{url}?{urlencode(query)}"
    for attempt in range(max_lag_waits + 1):
        if counters is not None:
            counters.calls += 1
        resp = await client.fetch(target)
        if resp.error is not None or resp.status_code != 200:
            raise MediaWikiError(f"{resp.url}: {resp.error or f'HTTP {resp.status_code}'}")
        try:
            data = json.loads(resp.content)
        except ValueError as error:
            raise MediaWikiError(f"{resp.url}: the answer is not JSON ({error})") from error
        problem = data.get("error") if isinstance(data, dict) else None
        if not problem:
            return data
        code = problem.get("code")
        if code != "maxlag":
            raise MediaWikiError(f"{resp.url}: API error {code}: {problem.get('info', '')}", code)
        if attempt == max_lag_waits:
            break
        wait = max(parse_retry_after(resp.headers.get("retry-after")) or 0.0, min_wait_s)
        if counters is not None:
            counters.maxlag_waits += 1
        if log is not None:
            log(f"{urlsplit(url).netloc} is lagged ({problem.get('lag', '?')} s): waiting {wait:g} s (maxlag)")
        await asyncio.sleep(wait)
    raise MediaWikiError(f"{url}: still lagged after {max_lag_waits} waits (maxlag={maxlag})", "maxlag")


def allow_file_hosts(settings: ClientSettings, urls: list[str]) -> ClientSettings:
    """``settings`` allowing the hosts of file ``urls`` (Commons' upload host) with the files
    policy; a host already allowed keeps its own policy (in the demo the sample server
    plays IMDb and Commons on one host)."""
    allowed = settings.allowed_hosts()
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if host and host not in allowed:
            settings = settings.with_host(url, FILES_POLICY)
            allowed = settings.allowed_hosts()
    return settings
