"""A partition's pages from an archive (Common Crawl or the Wayback Machine).

It asks the archive's index by URL prefix, fetches each id's captures in policy order
until one is usable (digest matches, not a WAF challenge) and stores it in the
partition's WARC with its provenance, so the same parsers build the same records.
See docs/sources-archives.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..base.folders import PagesFolder
from ..base.progress import Progress, ProgressLog
from ..base.settings import setting
from ..imdb.archive import PageArchive
from ..imdb.classify import is_not_found_page
from ..imdb.crawl import CrawlResult, PageOutcome
from ..imdb.ids import url_for
from ..imdb.records import UNCAPTURED
from ..net.client import FetchResponse, PoliteClient
from ..net.client_settings import ClientSettings, HostPolicy
from ..net.waf import is_waf_challenge
from . import common_crawl, wayback
from .captures import (
    NEWEST,
    OLDEST,
    Capture,
    RecordError,
    id_prefixes,
    normalise_digest,
    order_captures,
    payload_digest,
    read_warc_record,
    usable_index_line,
)

ARCHIVE_SOURCES = ("common_crawl", "wayback")
STOP_POLL_S = 0.25
# Capture fetches in a row with no HTTP answer after the client's retries: the page host
# is down (or its URL wrong), so the rest of the partition is left "failed" for a rerun
# instead of failing every id at the retry pace.
MAX_CONSECUTIVE_UNREACHABLE = 10


@dataclass(frozen=True)
class ArchiveSettings:
    """Endpoints and politeness of the archive hosts, and which captures to prefer.

    Rates are requests per second per host (<= 0: unlimited, loopback benchmarks only).
    Defaults follow what the hosts ask: Common Crawl's index server and data host about
    one request a second each (its status page: "no more than once per second is polite
    enough"; 503 means slow down), the Wayback Machine less (it throttles bulk CDX use)."""

    cc_index_url: str = setting(
        "https://index.commoncrawl.org", "Common Crawl's CDX index server", env="MPDS_CC_INDEX_URL"
    )
    cc_data_url: str = setting("https://data.commoncrawl.org", "Common Crawl's WARC files", env="MPDS_CC_DATA_URL")
    wayback_url: str = setting(
        "https://web.archive.org", "the Wayback Machine (CDX and raw captures)", env="MPDS_WAYBACK_URL"
    )
    crawls: tuple[str, ...] = setting(
        (),
        "Common Crawl crawl ids to ask, in order; empty: collinfo.json's list, newest first",
        env="MPDS_CC_CRAWLS",
        config_name="cc_crawls",
    )
    max_crawls: int = setting(
        6,
        "crawls one partition asks at most (collinfo.json lists 100+)",
        env="MPDS_CC_MAX_CRAWLS",
        config_name="cc_max_crawls",
    )
    policy: str = setting(
        NEWEST,
        "which usable capture of an id is kept: newest, oldest, or a crawl id (e.g. CC-MAIN-2019-04): "
        "then only that crawl is asked",
        env="MPDS_CAPTURE_POLICY",
        config_name="capture_policy",
    )
    max_captures_per_id: int = 3  # captures tried per id and crawl before the next crawl
    index_rate: float = setting(
        1.0,
        "requests per second to Common Crawl's CDX index server (503 halves it)",
        env="MPDS_CC_INDEX_RATE",
        config_name="cc_index_rate",
    )
    index_concurrency: int = 1
    data_rate: float = setting(
        1.0,
        "Range requests per second to Common Crawl's data host",
        env="MPDS_CC_DATA_RATE",
        config_name="cc_data_rate",
    )
    data_concurrency: int = 2
    wayback_rate: float = setting(
        0.5, "requests per second to the Wayback Machine (CDX and raw captures)", env="MPDS_WAYBACK_RATE"
    )
    wayback_concurrency: int = 1
    max_page_bytes: int = 10_000_000

    def client_settings(self, base: ClientSettings) -> ClientSettings:
        """``base`` allowing the archive hosts, each with its own policy: no robots.txt (API
        endpoints, not crawled sites) and no WAF detection (the archives' own hosts do not
        challenge; a challenge inside a capture is checked on the payload instead)."""
        settings = base
        for url, rate, concurrency in (
            (self.cc_index_url, self.index_rate, self.index_concurrency),
            (self.cc_data_url, self.data_rate, self.data_concurrency),
            (self.wayback_url, self.wayback_rate, self.wayback_concurrency),
        ):
            settings = settings.with_host(url, HostPolicy(rate, concurrency, obey_robots=False, detect_waf=False))
        return settings


@dataclass
class SourceCoverage:
    """One archive source's report for a partition (crawl metadata)."""

    asked: int = 0
    captured: int = 0
    crawls_asked: list[str] = field(default_factory=list)
    index_requests: int = 0
    capture_requests: int = 0
    index_errors: int = 0
    challenges_skipped: int = 0
    digest_mismatches: int = 0
    unusable_captures: int = 0  # fetch errors, not-a-response records, non-200 payloads

    def as_dict(self) -> dict:
        return {
            "asked": self.asked,
            "captured": self.captured,
            "crawls_asked": len(self.crawls_asked),
            "index_requests": self.index_requests,
            "capture_requests": self.capture_requests,
            "index_errors": self.index_errors,
            "challenges_skipped": self.challenges_skipped,
            "digest_mismatches": self.digest_mismatches,
            "unusable_captures": self.unusable_captures,
        }


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class _Run:
    """One source's crawl of one partition (event loop only)."""

    def __init__(self, kind, source, settings: ArchiveSettings, client, archive, progress, should_stop):
        self.kind, self.source, self.settings = kind, source, settings
        self.client, self.archive, self.progress = client, archive, progress
        self.should_stop = should_stop
        self.coverage = SourceCoverage()
        self.outcomes: dict[int, PageOutcome] = {}
        self.index_error: dict[int, str] = {}  # id -> why its index query failed
        self.tried: Counter[int] = Counter()  # id -> captures fetched
        self.last_problem: dict[int, str] = {}
        self.stopped_reason: str | None = None
        self.unreachable = False
        self.host_error: str | None = None  # why the page host was given up (unreachable)
        self._no_answer = 0
        self._checked = 0.0

    def stop_requested(self) -> bool:
        if self.stopped_reason is not None:
            return True
        if self.should_stop is not None and time.monotonic() - self._checked >= STOP_POLL_S:
            self._checked = time.monotonic()
            self.stopped_reason = self.should_stop()
        return self.stopped_reason is not None

    # --- index ---------------------------------------------------------------------------
    async def list_captures(self, crawl: str | None, ids: list[int]) -> dict[int, list[Capture]]:
        wanted = set(ids)
        by_id: dict[int, list[Capture]] = {}
        for prefix, lo, hi in id_prefixes(self.kind, min(ids), max(ids)):
            if not wanted.intersection(range(lo, hi + 1)) or self.stop_requested():
                continue
            if self.source == "common_crawl":
                answer = await common_crawl.query_prefix(
                    self.client, self.settings.cc_index_url, crawl, self.kind, prefix, lo, hi
                )
            else:
                answer = await wayback.query_prefix(self.client, self.settings.wayback_url, self.kind, prefix, lo, hi)
            self.coverage.index_requests += answer.requests
            if answer.error is not None:
                self.coverage.index_errors += 1
                for item_id in wanted.intersection(range(lo, hi + 1)):
                    self.index_error[item_id] = answer.error
                if answer.unreachable:
                    self.unreachable = True
                    return by_id
            for capture in answer.captures:
                if capture.id in wanted and usable_index_line(capture):
                    by_id.setdefault(capture.id, []).append(capture)
        return by_id

    # --- captures ------------------------------------------------------------------------
    async def fetch_usable(self, item_id: int, captures: list[Capture]) -> None:
        for capture in order_captures(captures, self.settings.policy)[: self.settings.max_captures_per_id]:
            if self.stop_requested() or self.host_error is not None:
                return
            self.tried[item_id] += 1
            self.coverage.capture_requests += 1
            resp = await self._fetch(capture)
            if resp is None:
                continue
            outcome = PageOutcome(
                self.kind,
                item_id,
                url_for(self.kind, item_id),
                "missing" if is_not_found_page(resp.content) else "ok",
                resp.status_code,
                None,
                None,
                self.tried[item_id],
                _now_iso(),
                source=self.source,
                source_url=capture.url,
                capture_crawl=capture.crawl,
                capture_timestamp=capture.timestamp,
                capture_filename=capture.filename,
                capture_offset=capture.offset,
                capture_length=capture.length,
                capture_digest=capture.digest,
            )
            self.archive.write(outcome, resp)
            self.outcomes[item_id] = outcome
            self.coverage.captured += 1
            self.progress.update(status=outcome.status)
            return

    async def _fetch(self, capture: Capture) -> FetchResponse | None:
        """The capture as the stored HTTP response, or None (and why) when unusable."""
        if self.source == "common_crawl":
            got = await common_crawl.fetch_record(self.client, self.settings.cc_data_url, capture)
            self._no_http_answer(got)
            if got.status_code != 206:
                return self._unusable(capture, f"Range fetch answered {common_crawl.describe_answer(got)}")
            try:
                record = read_warc_record(got.content, self.settings.max_page_bytes)
            except RecordError as exc:
                return self._unusable(capture, str(exc))
            status, headers, payload, body = record.http_status, record.headers, record.payload, record.body
        else:
            got = await wayback.fetch_capture(
                self.client, self.settings.wayback_url, capture, self.settings.max_page_bytes
            )
            self._no_http_answer(got)
            if got.status_code != 200:
                return self._unusable(capture, f"raw capture answered {common_crawl.describe_answer(got)}")
            status, payload, body = 200, got.content, got.content
            headers = {k: v for k, v in got.headers.items() if k in ("content-type", "date", "last-modified")}
        expected = normalise_digest(capture.digest)
        if expected and payload_digest(payload) != expected:
            self.coverage.digest_mismatches += 1
            self.last_problem[capture.id] = f"capture {capture.timestamp} does not match its index digest"
            return None
        if is_waf_challenge(status, headers, body):
            self.coverage.challenges_skipped += 1
            self.last_problem[capture.id] = f"capture {capture.timestamp} is a WAF challenge"
            return None
        if status != 200 or not body:
            return self._unusable(capture, f"archived HTTP {status}" + ("" if body else " with an empty body"))
        return FetchResponse(capture.url, status, headers, body, capture.url, 1)

    def _no_http_answer(self, got: FetchResponse) -> bool:
        if got.status_code is not None:
            self._no_answer = 0
            return False
        self._no_answer += 1
        if self._no_answer >= MAX_CONSECUTIVE_UNREACHABLE:
            self.host_error = (
                f"{self.source} page host unreachable: {self._no_answer} capture fetches in a row got no HTTP "
                f"answer (last: {got.error}); check the network and MPDS_CC_DATA_URL / MPDS_WAYBACK_URL"
            )
        return True

    def _unusable(self, capture: Capture, why: str) -> None:
        self.coverage.unusable_captures += 1
        self.last_problem[capture.id] = f"capture {capture.timestamp}: {why}"
        return None


async def crawl_archive(
    kind: str,
    ids: Iterable[int],
    source: str,
    settings: ArchiveSettings,
    client_settings: ClientSettings,
    archive: PageArchive,
    *,
    capture_list: dict[int, list[Capture]] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    log: ProgressLog | None = None,
    label: str | None = None,
) -> CrawlResult:
    """Fetch ``ids`` of ``kind`` from ``source`` ("common_crawl" or "wayback") into
    ``archive``; one outcome per id. ``capture_list`` (bulk mode) replaces the index."""
    if source not in ARCHIVE_SOURCES:
        raise ValueError(f"unknown archive source {source!r}: expected one of {ARCHIVE_SOURCES}")
    id_list = sorted(set(ids))
    started = time.monotonic()
    progress = Progress(label or f"{kind} pages from {source}", len(id_list), log, unit="ids")
    async with PoliteClient(settings.client_settings(client_settings), log=log) as client:
        run = _Run(kind, source, settings, client, archive, progress, should_stop)
        run.coverage.asked = len(id_list)
        remaining = list(id_list)
        if remaining:
            for crawl in await _crawls(client, source, settings, capture_list, run):
                if not remaining or run.stop_requested():
                    break
                if capture_list is not None:
                    by_id = {i: [c for c in capture_list.get(i, []) if c.crawl == crawl] for i in remaining}
                else:
                    run.coverage.crawls_asked.append(crawl or source)
                    by_id = await run.list_captures(crawl, remaining)
                if run.unreachable or run.host_error is not None:
                    break
                todo = [i for i in remaining if by_id.get(i)]
                concurrency = settings.data_concurrency if source == "common_crawl" else settings.wayback_concurrency
                queue: asyncio.Queue[int] = asyncio.Queue()
                for item_id in todo:
                    queue.put_nowait(item_id)

                async def work(by_id=by_id, queue=queue) -> None:
                    while not queue.empty():
                        item_id = queue.get_nowait()
                        await run.fetch_usable(item_id, by_id[item_id])

                await asyncio.gather(*(work() for _ in range(max(1, concurrency))))
                remaining = [i for i in remaining if i not in run.outcomes]
                if run.host_error is not None:
                    break
        by_host = client.requests_by_host()
        requests_made = client.requests_made
    unattempted = [i for i in remaining if run.stopped_reason is not None and i not in run.index_error]
    for item_id in remaining:
        if item_id in unattempted:
            continue
        error = run.index_error.get(item_id) or run.host_error
        status = "failed" if error else UNCAPTURED
        reason = error or run.last_problem.get(item_id) or f"no capture in {source} ({_asked(run)})"
        run.outcomes[item_id] = PageOutcome(
            kind, item_id, url_for(kind, item_id), status, None, None, reason, run.tried[item_id], _now_iso(), source
        )
        progress.update(status=status)
    progress.close()
    outcomes = sorted(run.outcomes.values(), key=lambda o: o.id)
    return CrawlResult(
        outcomes=outcomes,
        requests_made=requests_made,
        elapsed_s=time.monotonic() - started,
        stopped_blocked=False,
        unattempted_ids=unattempted,
        archived=run.coverage.captured,
        stopped_reason=run.stopped_reason,
        # The page host's configured rate (a 503 may have halved it for the rest of the run).
        rate_per_second=settings.data_rate if source == "common_crawl" else settings.wayback_rate,
        requests_by_host=by_host,
        coverage={source: run.coverage.as_dict()},
    )


def _asked(run: _Run) -> str:
    crawls = run.coverage.crawls_asked
    return f"{len(crawls)} crawl(s) asked" if crawls else "index not asked"


async def _crawls(client, source, settings: ArchiveSettings, capture_list, run: _Run) -> list[str | None]:
    """The crawls to ask, in order; Wayback is one collection (None)."""
    if source == "wayback":
        return [None]
    if settings.policy not in (NEWEST, OLDEST):
        return [settings.policy]  # one given crawl, from the index or the capture list alike
    if capture_list is not None:
        listed = sorted({c.crawl for caps in capture_list.values() for c in caps if c.crawl}, reverse=True)
        return _ordered(listed, settings)
    if settings.crawls:
        return _ordered(list(settings.crawls), settings)
    try:
        crawls = await common_crawl.list_crawls(client, settings.cc_index_url)
    except common_crawl.CommonCrawlIndexError as exc:
        run.coverage.index_errors += 1
        raise _NoCrawls(str(exc)) from None
    finally:
        run.coverage.index_requests += 1
    return _ordered(crawls, settings)


def _ordered(crawls: list[str], settings: ArchiveSettings) -> list[str]:
    """Newest first as listed (collinfo's order), or oldest first; capped at max_crawls."""
    ordered = list(reversed(crawls)) if settings.policy == OLDEST else list(crawls)
    return ordered[: max(1, settings.max_crawls)]


class _NoCrawls(RuntimeError):
    """collinfo.json could not be read: no crawl to ask."""


def crawl_archive_sync(
    kind: str,
    ids: Iterable[int],
    source: str,
    settings: ArchiveSettings,
    client_settings: ClientSettings,
    archive: PageArchive,
    **kwargs,
) -> CrawlResult:
    """``crawl_archive`` run to completion; a collinfo.json that cannot be read fails
    every id (with the reason), so a rerun asks again."""
    id_list = sorted(set(ids))
    try:
        return asyncio.run(crawl_archive(kind, id_list, source, settings, client_settings, archive, **kwargs))
    except _NoCrawls as exc:
        now = _now_iso()
        outcomes = [
            PageOutcome(kind, i, url_for(kind, i), "failed", None, None, str(exc), 0, now, source=source)
            for i in id_list
        ]
        coverage = SourceCoverage(asked=len(id_list), index_requests=1, index_errors=1)
        return CrawlResult(outcomes, 1, 0.0, False, [], coverage={source: coverage.as_dict()})


def captures_per_year(outcomes: Iterable[PageOutcome]) -> dict[str, int]:
    """Archived pages kept per year of their capture (the era of the layout parsed)."""
    years = Counter(o.capture_timestamp[:4] for o in outcomes if o.capture_timestamp and o.status == "ok")
    return dict(sorted(years.items()))


def load_capture_list(path: Path) -> dict[int, list[Capture]] | None:
    """The bulk mode's capture list of a partition, if one was written."""
    from .bulk import read_capture_list

    return read_capture_list(path) if Path(path).exists() else None


def archive_crawler(archive_settings: ArchiveSettings | None = None):
    """The ``archive_crawl`` that ``imdb.crawl.crawl_partition`` calls for the sources
    "common_crawl" and "wayback", with these archive settings."""
    chosen = archive_settings or ArchiveSettings()

    def crawl(kind, ids, source, settings, archive, *, should_stop=None, log=None, label=None) -> CrawlResult:
        folder = PagesFolder(archive.archive_dir)
        capture_list = load_capture_list(folder.captures) if source == "common_crawl" else None
        return crawl_archive_sync(
            kind,
            ids,
            source,
            chosen,
            settings,
            archive,
            capture_list=capture_list,
            should_stop=should_stop,
            log=log,
            label=label,
        )

    return crawl
