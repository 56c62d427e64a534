"""The crawl engine: fetch a partition of ids politely, classify, archive, resume.

Ids flow through a bounded queue to the workers and each body goes straight to the
archive, so memory does not grow with the partition. A run of WAF challenges, an
unreachable server or a dead run process stops the crawl cleanly; blocking is reported,
never worked around. See docs/crawl.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path
from ..base.folders import PagesFolder
from ..base.progress import Progress, ProgressLog
from ..base.rules import RuleResult, id_preview
from ..net.client import (
    REDIRECT_STATUSES,
    ClientStopped,
    FetchResponse,
    HostNotAllowed,
    PoliteClient,
    RobotsDisallowed,
    RobotsUnavailable,
)
from ..net.client_settings import ClientSettings
from .archive import PROVENANCE_HEADERS, ArchiveMode, PageArchive, partition_lock
from .classify import classify_response
from .ids import url_for
from .records import FETCH_STATUSES, FINAL_STATUSES, PAGE_SOURCES, FetchStatus, PageSource

STOP_POLL_S = 0.25  # how often ``should_stop`` is asked
MAX_CONSECUTIVE_UNREACHABLE = 10  # ids in a row with no response after retries: the server is unreachable


@dataclass
class PageOutcome:
    kind: str
    id: int
    url: str
    status: FetchStatus
    http_status: int | None
    redirect_id: int | None
    error: str | None
    attempts: int
    fetched_at: str  # ISO 8601, UTC
    # Provenance (archive.PROVENANCE_HEADERS): which source gave the page, and for an
    # archive's capture where exactly it lies. Live fetches have source "live" and
    # source_url = url; the capture fields are null for them.
    source: PageSource | None = "live"
    source_url: str | None = None
    capture_crawl: str | None = None  # Common Crawl's crawl id, e.g. CC-MAIN-2024-10
    capture_timestamp: str | None = None  # 14 digits, UTC
    capture_filename: str | None = None  # the WARC file (Common Crawl)
    capture_offset: int | None = None
    capture_length: int | None = None
    capture_digest: str | None = None  # the index's base32 SHA-1 of the payload, verified

    def __post_init__(self):
        if self.source == "live" and self.source_url is None:
            self.source_url = self.url


@dataclass
class CrawlResult:
    outcomes: list[PageOutcome]  # this run's attempted ids, sorted by id
    requests_made: int
    elapsed_s: float
    stopped_blocked: bool
    unattempted_ids: list[int]
    skipped_archived: int = 0  # ids already archived by an earlier run (not refetched)
    archived: int = 0  # responses written to the archive in this run
    stopped_reason: str | None = None  # why ``should_stop`` stopped the crawl early, if it did
    rate_per_second: float = 0.0  # the rate in force at the end (robots.txt's Crawl-delay may lower it)
    requests_by_host: dict[str, int] = field(default_factory=dict)
    # Per archive source asked: ids asked, ids captured, requests... (sources/archived_pages.py)
    coverage: dict[str, dict] = field(default_factory=dict)
    repaired_tail_bytes: int = 0  # a torn last record (an earlier run's kill or full disk) cut off at the start

    def status_counts(self) -> dict[str, int]:
        counts = Counter(o.status for o in self.outcomes)
        return {status: counts.get(status, 0) for status in FETCH_STATUSES}

    @property
    def pages_per_s(self) -> float:
        return len(self.outcomes) / self.elapsed_s if self.elapsed_s > 0 else 0.0


# An archive's crawl of the ids live IMDb did not answer (sources/archived_pages.py
# provides it: the chain lives here, the archives sit beside imdb/ in sources/).
ArchiveCrawl = Callable[..., "CrawlResult"]


class ImdbBlockingError(RuntimeError):
    """IMDb answered with AWS WAF challenges: the crawl stopped on purpose."""

    def __init__(self, kind: str, blocks: int, result: CrawlResult | None = None):
        self.result = result
        left = len(result.unattempted_ids) if result else 0
        super().__init__(
            f"IMDb is blocking this crawler: {blocks} consecutive {kind} pages were answered with an "
            f"AWS WAF challenge, so the crawl stopped ({left} ids left unattempted, recorded as blocked "
            "or not attempted, never as missing). The pipeline does not work around blocking. What to do: "
            "wait (hours) before retrying this partition, lower the request rate and concurrency, or take "
            "the titles from IMDb's non-commercial datasets (the dataset/rehydrate path) instead of crawling."
        )


class CrawlStopped(RuntimeError):
    """``should_stop`` said stop (e.g. the run that started this step is gone); the
    outcomes so far are written and the rest is left for the next run."""

    def __init__(self, reason: str, result: CrawlResult):
        self.result = result
        super().__init__(
            f"crawl stopped early: {reason}; {len(result.unattempted_ids)} ids left unattempted for the next run"
        )


def _unreachable_hint(unavailable: RobotsUnavailable, base_url: str) -> str:
    if unavailable.http_status is not None:
        return ""  # the host answered, with an error: the message says which
    return f"; {base_url} is unreachable: check the network and the base URL (MPDS_IMDB_BASE_URL)"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


async def _fetch_one(
    client: PoliteClient, kind: str, item_id: int, url: str
) -> tuple[PageOutcome, FetchResponse | None]:
    try:
        resp = await client.fetch(url)
        location = resp.headers.get("location", "")
        if resp.status_code in REDIRECT_STATUSES and location:
            from .classify import redirect_target_id

            if redirect_target_id(kind, location) == item_id:
                # Same page under another spelling (e.g. a trailing slash): follow it.
                resp = await client.fetch(url, follow_redirects=True)
    except (ClientStopped, RobotsUnavailable):
        raise  # never sent: the id stays unattempted (an unreachable robots.txt stops the partition)
    except (HostNotAllowed, RobotsDisallowed) as exc:
        return PageOutcome(kind, item_id, url, "failed", None, None, str(exc), 0, _now_iso()), None
    except Exception as exc:  # noqa: BLE001 - one bad id must not end the partition
        return PageOutcome(
            kind, item_id, url, "failed", None, None, f"{type(exc).__name__}: {exc}", 1, _now_iso()
        ), None
    status, redirect_id, error = classify_response(kind, item_id, resp)
    outcome = PageOutcome(kind, item_id, url, status, resp.status_code, redirect_id, error, resp.attempts, _now_iso())
    return outcome, resp


async def crawl_ids(
    kind: str,
    ids: Iterable[int],
    settings: ClientSettings,
    archive: PageArchive,
    *,
    max_consecutive_blocks: int = 5,
    max_consecutive_unreachable: int = MAX_CONSECUTIVE_UNREACHABLE,
    should_stop: Callable[[], str | None] | None = None,
    log: ProgressLog | None = None,
    label: str | None = None,
) -> CrawlResult:
    """Fetch every id of ``kind`` (unless stopped by blocking, or by ``should_stop``
    returning a reason), archiving final responses; progress goes to ``log``."""
    id_list = list(ids)
    started = time.monotonic()
    outcomes: list[PageOutcome] = []
    queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=max(1, settings.concurrency) * 2)
    state = {"consecutive_blocks": 0, "consecutive_unreachable": 0, "stopped": False, "archived": 0, "reason": None}
    workers_n = max(1, settings.concurrency)
    progress = Progress(label or f"{kind} pages", len(id_list), log, unit="ids")

    async with PoliteClient(settings, log=log) as client:

        def stop(reason: str | None) -> None:
            state["stopped"], state["reason"] = True, state["reason"] or reason
            client.stop()  # from here on no request leaves, even one waiting for its rate slot

        async def produce() -> None:
            for item_id in id_list:
                if state["stopped"]:
                    break
                await queue.put(item_id)
            for _ in range(workers_n):
                await queue.put(None)

        async def work() -> None:
            while (item_id := await queue.get()) is not None:
                if state["stopped"]:
                    continue  # left unattempted
                url = url_for(kind, item_id, settings.base_url)
                try:
                    outcome, resp = await _fetch_one(client, kind, item_id, url)
                except ClientStopped:
                    continue  # never sent: left unattempted
                except RobotsUnavailable as unavailable:
                    stop(f"{unavailable}{_unreachable_hint(unavailable, settings.base_url)}")
                    continue
                outcomes.append(outcome)
                if outcome.status == "blocked":
                    state["consecutive_blocks"] += 1
                    if state["consecutive_blocks"] >= max_consecutive_blocks:
                        stop(None)
                else:
                    state["consecutive_blocks"] = 0
                if resp is not None and resp.status_code is None:  # not one HTTP response, retries included
                    state["consecutive_unreachable"] += 1
                    if state["consecutive_unreachable"] >= max_consecutive_unreachable:
                        stop(
                            f"{settings.base_url} is unreachable: {state['consecutive_unreachable']} ids in a row got "
                            f"no HTTP response after retries (last: {outcome.error}); check the network and the "
                            "base URL (MPDS_IMDB_BASE_URL)"
                        )
                elif resp is not None:
                    state["consecutive_unreachable"] = 0
                try:
                    if resp is not None and archive.write(outcome, resp):
                        state["archived"] += 1
                except OSError:
                    stop(None)  # a full disk: nothing more is sent, the error ends the crawl
                    raise
                progress.update(status=outcome.status)

        async def watch() -> None:
            while not state["stopped"]:
                if reason := should_stop():
                    stop(reason)
                    return
                await asyncio.sleep(STOP_POLL_S)

        watcher = asyncio.ensure_future(watch()) if should_stop is not None else None
        try:
            await asyncio.gather(produce(), *(work() for _ in range(workers_n)))
        finally:
            if watcher is not None:
                watcher.cancel()
        requests_made = client.requests_made
        rate = client.rate_per_second
        by_host = client.requests_by_host()
    progress.close()

    attempted = {o.id for o in outcomes}
    outcomes.sort(key=lambda o: o.id)
    return CrawlResult(
        outcomes=outcomes,
        requests_made=requests_made,
        elapsed_s=time.monotonic() - started,
        stopped_blocked=state["stopped"] and state["reason"] is None,
        unattempted_ids=[i for i in id_list if i not in attempted],
        archived=state["archived"],
        stopped_reason=state["reason"],
        rate_per_second=rate,
        requests_by_host=by_host,
    )


def crawl_partition(
    kind: str,
    ids: Iterable[int],
    settings: ClientSettings,
    archive_dir: Path,
    *,
    page_sources: Sequence[str] = ("live",),
    archive_crawl: ArchiveCrawl | None = None,
    archive_mode: ArchiveMode = "full",
    max_consecutive_blocks: int = 5,
    max_consecutive_unreachable: int = MAX_CONSECUTIVE_UNREACHABLE,
    refetch: Iterable[int] = (),
    should_stop: Callable[[], str | None] | None = None,
    log: ProgressLog | None = None,
    label: str | None = None,
    run_id: str | None = None,
) -> CrawlResult:
    """Crawl one partition into ``archive_dir`` (resumable), write outcomes.parquet, and
    raise ImdbBlockingError (or CrawlStopped) after writing them if the crawl stopped.

    ``page_sources`` are tried in order, each for the ids the ones before did not give a
    final answer (ok, missing, redirect): "live" (IMDb at ``settings.base_url``),
    "common_crawl", "wayback" (through ``archive_crawl``: ``sources.archived_pages.archive_crawler``).
    Every page lands in the same archive with its provenance.

    Holds the partition's lock throughout: a second crawl of it, in any process on any
    machine sharing the folder, raises PartitionBusy naming this one (``run_id`` is
    shown). Ids already archived are skipped, except those in ``refetch`` (the re-crawl
    policy revisits incomplete records); the newer response is appended and wins on re-parse."""
    sources = list(page_sources)
    unknown = [s for s in sources if s not in PAGE_SOURCES]
    if not sources or unknown:
        raise ValueError(f"page sources must be a non-empty list of {PAGE_SOURCES}, got {sources}")
    if archive_crawl is None and any(s != "live" for s in sources):
        raise ValueError(
            f"page sources {sources} name an archive: pass archive_crawl=sources.archived_pages.archive_crawler(...)"
        )
    archive_dir = Path(archive_dir)
    with partition_lock(archive_dir, run_id=run_id):
        archive = PageArchive(archive_dir, archive_mode)
        if archive.dropped_tail_bytes and log is not None:
            log(
                f"{label or kind + ' pages'}: cut {archive.dropped_tail_bytes:,} bytes off the end of "
                f"{archive.path}: a record an earlier run did not finish writing (killed, or the disk was full); "
                "its id is fetched again"
            )
        id_list = list(ids)
        done = archive.archived_ids(kind) - set(refetch)
        todo = [i for i in id_list if i not in done]
        if log is not None and len(todo) < len(id_list):
            log(
                f"{label or kind + ' pages'}: {len(id_list) - len(todo):,} of {len(id_list):,} ids already archived, "
                f"{len(todo):,} to fetch"
            )
        results: list[CrawlResult] = []
        left = todo
        for source in sources:
            if not left:
                break
            if source == "live":
                result = asyncio.run(
                    crawl_ids(
                        kind,
                        left,
                        settings,
                        archive,
                        max_consecutive_blocks=max_consecutive_blocks,
                        max_consecutive_unreachable=max_consecutive_unreachable,
                        should_stop=should_stop,
                        log=log,
                        label=label,
                    )
                )
            else:
                result = archive_crawl(
                    kind,
                    left,
                    source,
                    settings,
                    archive,
                    should_stop=should_stop,
                    log=log,
                    label=f"{label or kind + ' pages'} from {source}",
                )
            results.append(result)
            answered = {o.id for o in result.outcomes if o.status in FINAL_STATUSES}
            left = [i for i in left if i not in answered]
            if result.stopped_reason is not None or result.stopped_blocked:
                break
        result = _merge_results(results, todo)
        result.skipped_archived = len(id_list) - len(todo)
        result.repaired_tail_bytes = archive.dropped_tail_bytes
        _write_outcomes(archive_dir, archive, result.outcomes)
    if result.stopped_reason is not None:
        raise CrawlStopped(result.stopped_reason, result)
    if result.stopped_blocked:
        raise ImdbBlockingError(kind, max_consecutive_blocks, result)
    return result


def _merge_results(results: list[CrawlResult], todo: list[int]) -> CrawlResult:
    """One partition's result from each source's: an id's outcome is the last source's
    that tried it (each source asks only for what the ones before lacked)."""
    if len(results) == 1:
        return results[0]
    outcomes: dict[int, PageOutcome] = {}
    by_host: Counter[str] = Counter()
    coverage: dict[str, dict] = {}
    for result in results:
        outcomes.update({o.id: o for o in result.outcomes})
        by_host.update(result.requests_by_host)
        coverage.update(result.coverage)
    last = results[-1] if results else None
    return CrawlResult(
        outcomes=[outcomes[i] for i in sorted(outcomes)],
        requests_made=sum(r.requests_made for r in results),
        elapsed_s=sum(r.elapsed_s for r in results),
        stopped_blocked=bool(last and last.stopped_blocked),
        unattempted_ids=[i for i in todo if i not in outcomes],
        archived=sum(r.archived for r in results),
        stopped_reason=last.stopped_reason if last else None,
        rate_per_second=next((r.rate_per_second for r in results if r.rate_per_second), 0.0),
        requests_by_host=dict(sorted(by_host.items())),
        coverage=coverage,
    )


# --- outcomes.parquet -------------------------------------------------------------------
# Where an archived page's bytes lie (PageOutcome's capture_* fields); provenance rows
# carry the same columns.
CAPTURE_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("capture_crawl", pa.string()),
    ("capture_timestamp", pa.string()),
    ("capture_filename", pa.string()),
    ("capture_offset", pa.int64()),
    ("capture_length", pa.int64()),
    ("capture_digest", pa.string()),
)
_OUTCOME_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("id", pa.int64()),
        ("url", pa.string()),
        ("status", pa.string()),
        ("http_status", pa.int32()),
        ("redirect_id", pa.int64()),
        ("error", pa.string()),
        ("attempts", pa.int32()),
        ("fetched_at", pa.string()),
        ("source", pa.string()),
        ("source_url", pa.string()),
        *CAPTURE_FIELDS,
    ]
)


def read_outcomes(archive_dir: Path) -> list[PageOutcome]:
    """Every attempted id's outcome recorded for this partition (one per id), sorted by id."""
    path = PagesFolder(Path(archive_dir)).outcomes
    if not path.exists():
        return []
    names = [f.name for f in fields(PageOutcome)]
    # Files written before provenance existed lack its columns: those were live fetches.
    return [PageOutcome(**{n: row[n] for n in names if n in row}) for row in pq.read_table(path).to_pylist()]


def one_status_per_id(outcomes: Iterable[PageOutcome], kind: str) -> RuleResult:
    """The crawl's rule for a partition: every attempted id of ``kind`` has exactly one
    status, one of FETCH_STATUSES. Blocked ids fail it as a warning (a rerun fetches
    them) and are listed; a repeated id or an unknown status is an error."""
    mine = [o for o in outcomes if o.kind == kind]  # a person partition's galleries have their own kind
    per_id = Counter(o.id for o in mine)
    repeated = sorted(i for i, n in per_id.items() if n > 1)
    unknown = sorted({str(o.status) for o in mine} - set(FETCH_STATUSES))
    blocked = sorted({o.id for o in mine if o.status == "blocked"})
    problems = bool(repeated or unknown)
    description = (
        "ids with several statuses, or statuses the crawl does not give"
        if problems
        else "IMDb blocked some requests: rerun this partition later"
        if blocked
        else "every attempted id has exactly one status; none blocked"
    )
    return RuleResult(
        "one_status_per_id",
        not problems and not blocked,
        description,
        {
            "attempted": len(per_id),
            "blocked": len(blocked),
            "blocked_ids": id_preview(blocked),
            "repeated_ids": id_preview(repeated),
            "unknown_statuses": ", ".join(unknown),
        },
        severity="error" if problems else "warn",
    )


def _write_outcomes(archive_dir: Path, archive: PageArchive, new: list[PageOutcome]) -> None:
    """Merge earlier outcomes, archive-derived ones (a killed run wrote no table) and new ones."""
    merged: dict[tuple[str, int], PageOutcome] = {(o.kind, o.id): o for o in read_outcomes(archive_dir)}
    for rec in archive.archived_summaries():
        key = (rec.kind, rec.id)
        earlier = merged.get(key)
        if earlier is None or earlier.status not in FINAL_STATUSES:
            merged[key] = PageOutcome(
                rec.kind,
                rec.id,
                rec.url,
                rec.status,
                rec.http_status,
                rec.redirect_id,
                None,
                rec.attempts,
                rec.fetched_at,
                **{name: getattr(rec, name) for name in PROVENANCE_HEADERS},
            )
    for outcome in new:
        earlier = merged.get((outcome.kind, outcome.id))
        # A refetch that found nothing (a crawl without a capture, a block) keeps the page already stored.
        if earlier is None or outcome.status in FINAL_STATUSES or earlier.status not in FINAL_STATUSES:
            merged[(outcome.kind, outcome.id)] = outcome
    names = _OUTCOME_SCHEMA.names  # flat fields: no deep copy (asdict's cost 0.4 ms an outcome)
    rows = [{n: getattr(o, n) for n in names} for o in sorted(merged.values(), key=lambda o: (o.kind, o.id))]
    table = pa.Table.from_pylist(rows, schema=_OUTCOME_SCHEMA)
    with atomic_path(PagesFolder(archive_dir).outcomes) as tmp:
        pq.write_table(table, tmp)
