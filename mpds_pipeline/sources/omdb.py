"""Asking OMDb by IMDb id for the titles no page fully describes, partition by partition.

The key comes from ``MPDS_OMDB_API_KEY`` only and reaches no log, archive, metadata or
error. Every answer goes to the partition's answer log (omdb_answers.py), so a run resumes
where the last stopped; "Invalid API key!" raises ``OmdbKeyRefused``, "Request limit
reached!" pauses OMDb's host until the next UTC day (sources/pauses.py). The daily quota is
omdb_quota.py's; the records are rebuilt from the log by omdb_records.py.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..base.folders import OmdbFolder
from ..base.progress import Progress, ProgressLog
from ..net.redact import redact_url
from .omdb_answers import ANSWERED, AnswerLine, AnswerWriter, classify, read_answers, request_url, scrub
from .omdb_quota import DailyQuota
from .omdb_records import OmdbRecords, build_omdb_records, write_omdb_records

OMDB_KEY_ENV = "MPDS_OMDB_API_KEY"
DEFAULT_OMDB_RATE = 2.0  # requests per second: OMDb publishes a daily limit only; stay gentle
KEY_HELP = (
    f"set {OMDB_KEY_ENV} to a valid OMDb key (https://www.omdbapi.com/apikey.aspx; a new key works only "
    f"after the activation link OMDb e-mails), or unset {OMDB_KEY_ENV} to build without OMDb"
)


class OmdbKeyRefused(Exception):
    """OMDb refused the key ("Invalid API key!"); the message says what to do, never the key."""


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The OMDb key from the environment, or None (OMDb is then skipped)."""
    value = (os.environ if environ is None else environ).get(OMDB_KEY_ENV, "").strip()
    return value or None


@dataclass
class OmdbRun:
    wanted: int  # ids that needed OMDb, before this run
    asked: list[int] = field(default_factory=list)  # requests sent (the one OMDb refused for the limit included)
    statuses: Counter = field(default_factory=Counter)  # answers by status
    stopped: str | None = None  # "limit", "quota", "stopped: ..." or None (every wanted id asked)
    requests_by_host: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return self.wanted - sum(self.statuses[s] for s in ANSWERED)

    def metadata(self) -> dict:
        from ..base.rules import id_preview

        return {
            "wanted": self.wanted,
            "asked": len(self.asked),
            "asked_ids": id_preview(self.asked),
            **{f"answers_{status}": self.statuses.get(status, 0) for status in ("ok", "not_found", "failed")},
            "remaining": self.remaining,
            "stopped": self.stopped or "",
        }


def ask_omdb(
    ids: Iterable[int],
    *,
    base_url: str,
    key: str,
    settings,
    folder: OmdbFolder,
    quota: DailyQuota,
    rate_per_second: float = DEFAULT_OMDB_RATE,
    should_stop: Callable[[], str | None] | None = None,
    log: ProgressLog | None = None,
    label: str = "omdb",
    pauses_file: Path | None = None,
    now: Callable[[], datetime] | None = None,
) -> OmdbRun:
    """Ask OMDb for ``ids`` in order, one at a time, appending every answer to the
    folder's answer log; stop at the daily quota or OMDb's limit. OMDb's limit pauses its
    host in ``pauses_file`` until the next UTC day, and a paused host is not asked (the
    pause is the one record that the day is spent, for every partition and for the
    schedules). Raises OmdbKeyRefused (after keeping the answers so far) when OMDb
    refuses the key."""
    from ..net.client_settings import HostPolicy

    ids = list(ids)
    client_settings = settings.with_host(
        base_url, HostPolicy(rate_per_second=rate_per_second, concurrency=1, obey_robots=False, detect_waf=False)
    )
    from urllib.parse import urlsplit

    from .pauses import active_pause, next_utc_day, pause_host

    clock = now or (lambda: datetime.now(UTC))
    host = (urlsplit(base_url).hostname or "").lower()
    if pauses_file is not None and (pause := active_pause(pauses_file, host, clock())) is not None:
        return OmdbRun(wanted=len(ids), stopped=f"paused: {pause.describe()}")

    def on_limit() -> None:
        if pauses_file is not None:
            moment = clock()
            pause_host(
                pauses_file, host, 'OMDb answered "Request limit reached!"', until=next_utc_day(moment), now=moment
            )

    return asyncio.run(_ask(ids, base_url, key, client_settings, folder, quota, should_stop, log, label, on_limit))


async def _ask(ids, base_url, key, client_settings, folder, quota, should_stop, log, label, on_limit) -> OmdbRun:
    from ..net.client import PoliteClient

    run = OmdbRun(wanted=len(ids))
    writer = AnswerWriter(folder.answers, key)
    progress = Progress(label, len(ids), log, unit="ids")
    try:
        async with PoliteClient(client_settings) as client:
            try:
                for title_id in ids:
                    reason = should_stop() if should_stop else None
                    if reason:
                        run.stopped = f"stopped: {reason}"
                        break
                    if not quota.take():
                        run.stopped = "quota"
                        break
                    run.asked.append(title_id)
                    resp = await client.fetch(request_url(base_url, title_id, key))
                    if resp.status_code is None:
                        status, answer, error = "failed", None, resp.error or "no answer"
                    else:
                        status, answer, error = classify(resp.status_code, resp.content)
                    if status == "bad_key":
                        raise OmdbKeyRefused(
                            f'OMDb refused the API key ("{error}", HTTP {resp.status_code}): {KEY_HELP}'
                        )
                    if status == "limit":
                        on_limit()
                        run.stopped = "limit"
                        break
                    run.statuses[status] += 1
                    progress.update(status=status)
                    writer.write(
                        AnswerLine(
                            id=title_id,
                            url=redact_url(resp.url),
                            http_status=resp.status_code,
                            status=status,
                            answer=answer,
                            error=scrub(error, key),
                            retrieved_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        )
                    )
            finally:
                run.requests_by_host = client.requests_by_host()
    finally:
        writer.close()
        progress.close()
    return run


def ids_wanting_omdb(candidates: Iterable[int], page_records: Iterable, answered: Iterable[int]) -> list[int]:
    """Of ``candidates`` (ids that exist, or may), those OMDb should be asked for: no
    usable page, or a page without poster or plot; never an id OMDb already answered."""
    complete = {r.id for r in page_records if r.poster_url and r.synopsis}
    done = set(answered)
    return sorted(i for i in set(candidates) if i not in complete and i not in done)


def omdb_candidates(outcomes: Iterable, index_ids: Iterable[int] | None) -> list[int]:
    """Ids of a partition that may exist: the index's (when it exists), else those the
    crawl attempted that IMDb did not answer as missing or a redirect."""
    if index_ids is not None:
        return sorted(set(index_ids))
    return sorted({o.id for o in outcomes if o.kind == "title" and o.status not in ("missing", "redirect")})


# --- one partition ---------------------------------------------------------------------------


class OmdbBusy(Exception):
    """Another run is asking OMDb for this partition."""


@contextmanager
def _partition_lock(folder: OmdbFolder):
    folder.path.mkdir(parents=True, exist_ok=True)
    with open(folder.lock, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OmdbBusy(f"another run is asking OMDb for {folder.path.name}: wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class OmdbPartition:
    candidates: int  # ids of the partition that exist (or may)
    complete_pages: int  # of them, ids whose page gave both poster and plot
    run: OmdbRun | None  # None: OMDb was not asked (no key)
    records: OmdbRecords
    skipped: str | None = None

    def metadata(self) -> dict:
        planned = {} if self.run is None else {"candidates": self.candidates, "complete_pages": self.complete_pages}
        return {
            **planned,
            **(self.run.metadata() if self.run else {}),
            **({"skipped": self.skipped} if self.skipped else {}),
            **{f"records_{k}": v for k, v in self.records.counts.items()},
        }


def omdb_partition(
    pages_dir: Path,
    folder: OmdbFolder,
    first: int,
    last: int,
    *,
    key: str | None,
    base_url: str,
    settings,
    quota: DailyQuota,
    index_dir: Path | None = None,
    rate_per_second: float = DEFAULT_OMDB_RATE,
    should_stop: Callable[[], str | None] | None = None,
    log: ProgressLog | None = None,
    pauses_file: Path | None = None,
    now: Callable[[], datetime] | None = None,
) -> OmdbPartition:
    """Ask OMDb (within the quota) for a title partition's ids that lack a usable page,
    a poster or a plot, then rebuild its ``omdb.parquet`` from every answer kept. Without
    a key nothing is asked and the records are rebuilt from earlier answers."""
    from ..imdb.crawl import read_outcomes
    from ..imdb.dataset_index import has_index, ids_to_crawl
    from ..imdb.record_store import parse_archive

    with _partition_lock(folder):
        run, skipped, candidates, complete = None, None, [], 0
        if key is None:
            # Nothing to ask: skip planning (it parses the partition), just rebuild the records.
            skipped = f"no {OMDB_KEY_ENV} set: OMDb not asked"
            if log:
                log(skipped)
        else:
            pages = parse_archive(pages_dir, "title").records
            index_ids = None
            if index_dir is not None and has_index(index_dir):
                index_ids = ids_to_crawl(index_dir, first, last, probe_beyond_index=False)
            candidates = omdb_candidates(read_outcomes(pages_dir), index_ids)
            wanted = ids_wanting_omdb(candidates, pages, read_answers(folder.answers)[0])
            candidate_set = set(candidates)
            complete = sum(1 for r in pages if r.poster_url and r.synopsis and r.id in candidate_set)
            run = OmdbRun(wanted=0)
            if wanted:
                run = ask_omdb(
                    # Newest ids first: over days at the quota, the titles most likely to lack a page come first.
                    sorted(wanted, reverse=True),
                    base_url=base_url,
                    key=key,
                    settings=settings,
                    folder=folder,
                    quota=quota,
                    rate_per_second=rate_per_second,
                    should_stop=should_stop,
                    log=log,
                    label=f"omdb_titles {folder.path.name}",
                    pauses_file=pauses_file,
                    now=now,
                )
        records = build_omdb_records(folder, index_dir)
        write_omdb_records(records, folder.records)
    return OmdbPartition(len(candidates), complete, run, records, skipped)
