"""OMDb by IMDb id: title, year, rating, genres, actor names, plot and a poster URL.

OMDb (``https://www.omdbapi.com/?i=tt…&apikey=…``) answers JSON by IMDb id. A free key
allows 1,000 requests a day; the key comes from ``MPDS_OMDB_API_KEY`` only (never from a
file under the data directory) and reaches no log line, archive, metadata value or
error: every URL kept is ``redact_url``'s, and whatever we write is scrubbed of the key
as a second guard.

Answers are kept as received in the partition's ``answers.jsonl`` (redacted URL, HTTP
status, the JSON answer, the time), one line per request that got an answer, so the
records (``omdb.parquet``) can be rebuilt offline after a parser fix, and a run resumes
where the last one stopped: an id with an answer ("ok" or "not_found") is never asked
again. OMDb's errors:

- "Invalid API key!" (HTTP 401): ``OmdbKeyRefused`` at once, nothing more is asked.
- "Request limit reached!" (HTTP 401): the run stops cleanly and pauses OMDb's host until
  the next UTC day (sources/pauses.py), so no partition or schedule asks before then.
- "Incorrect IMDb ID." and the other "not found" answers: the id is answered, with
  nothing (never asked again).

"N/A" means missing, never a value. ``Rated`` becomes the certificate (the certificate
filter reads it), ``Genre`` a list, and ``Actors`` names are joined to person ids
through the title's principals in the IMDb datasets index (names without a match are
counted, and without the index every name is unmatched: a cast needs ids).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path, write_atomic
from ..base.folders import OmdbFolder
from ..base.progress import Progress, ProgressLog
from ..imdb.ids import person_url, title_code
from ..imdb.page_data import full_size_image
from ..net.redact import REDACTED, redact_text, redact_url

OMDB_KEY_ENV = "MPDS_OMDB_API_KEY"
DEFAULT_DAILY_QUOTA = 1000  # OMDb's free key
DEFAULT_OMDB_RATE = 2.0  # requests per second: OMDb publishes a daily limit only; stay gentle
NA = "N/A"
KEY_HELP = (
    f"set {OMDB_KEY_ENV} to a valid OMDb key (https://www.omdbapi.com/apikey.aspx; a new key works only "
    f"after the activation link OMDb e-mails), or unset {OMDB_KEY_ENV} to build without OMDb"
)

OmdbStatus = Literal["ok", "not_found", "bad_key", "limit", "failed"]
# An id with one of these is answered: never asked again.
ANSWERED: frozenset[str] = frozenset({"ok", "not_found"})
KEY_ERRORS = frozenset({"Invalid API key!", "No API key provided."})
LIMIT_ERRORS = frozenset({"Request limit reached!"})
NOT_FOUND_ERRORS = frozenset(
    {
        "Incorrect IMDb ID.",
        "Error getting data.",
        "Movie not found!",
        "Series not found!",
        "Series or episode not found!",
    }
)
# OMDb's Type -> the IMDb datasets' titleType.
TITLE_TYPES = {"movie": "movie", "series": "tvSeries", "episode": "tvEpisode", "game": "videoGame"}
_YEAR_RE = re.compile(r"\d{4}")


class OmdbKeyRefused(Exception):
    """OMDb refused the key ("Invalid API key!"); the message says what to do, never the key."""


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The OMDb key from the environment, or None (OMDb is then skipped)."""
    value = (os.environ if environ is None else environ).get(OMDB_KEY_ENV, "").strip()
    return value or None


def request_url(base_url: str, title_id: int, key: str) -> str:
    """The request for one id (the key in it: never store or log this, only its redaction)."""
    return f"{base_url.rstrip('/')}/?{urlencode({'i': title_code(title_id), 'apikey': key})}"


def scrub(text: str | None, key: str | None) -> str | None:
    """``text`` with the key gone, whatever shape it took there."""
    if text is None:
        return None
    text = redact_text(text)
    return text.replace(key, REDACTED) if key else text


# --- one answer ------------------------------------------------------------------------


def classify(http_status: int | None, body: bytes) -> tuple[OmdbStatus, dict | None, str | None]:
    """(status, the JSON answer, an error) of one response."""
    try:
        answer = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "failed", None, f"HTTP {http_status}: not a JSON answer ({len(body)} bytes)"
    if not isinstance(answer, dict):
        return "failed", None, f"HTTP {http_status}: a JSON {type(answer).__name__}, not an object"
    if answer.get("Response") == "True" and answer.get("imdbID"):
        return "ok", answer, None
    error = str(answer.get("Error") or "")
    if error in KEY_ERRORS:
        return "bad_key", answer, error
    if error in LIMIT_ERRORS:
        return "limit", answer, error
    if error in NOT_FOUND_ERRORS:
        return "not_found", answer, error
    return "failed", answer, f"HTTP {http_status}: {error or 'an answer without Response True'}"


def _value(answer: Mapping[str, Any], name: str) -> str | None:
    value = answer.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return None if not text or text == NA else text


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip() and part.strip() != NA]


def parse_answer(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    """A title's fields from one OMDb answer (None for an error answer). Fields are named
    as TitleRecord's; ``actor_names`` are OMDb's names, before the join to ids."""
    if answer.get("Response") != "True":
        return None
    code = _value(answer, "imdbID") or ""
    digits = code[2:] if code.startswith("tt") else ""
    if not digits.isdigit():
        return None
    year = _YEAR_RE.search(_value(answer, "Year") or "")
    genres = _split(_value(answer, "Genre"))
    poster = _value(answer, "Poster")
    kind = _value(answer, "Type")
    return {
        "id": int(digits),
        "title": _value(answer, "Title"),
        "original_title": None,  # OMDb gives one title, usually the English one
        "title_type": TITLE_TYPES.get(kind, kind) if kind else None,
        "year": int(year.group()) if year else None,
        "genres": genres,
        "actor_names": _split(_value(answer, "Actors")),
        # OMDb links a 300-pixel resize; the same ._V1_ rule as a page's poster gives the original.
        "poster_url": full_size_image(poster) if poster and poster.startswith(("http://", "https://")) else None,
        "synopsis": _value(answer, "Plot"),
        "certificate": _value(answer, "Rated"),
        "is_adult": any(g.lower() == "adult" for g in genres),
    }


def _name_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def join_actor_names(
    names: Iterable[str], principals: Iterable[tuple[int, str | None, str]]
) -> tuple[dict[str, str], list[str]]:
    """OMDb's actor names matched to the title's principals (person id, name, category):
    (name -> person URL, in OMDb's order; the names that matched nobody). Names compare
    without case, accents or extra spaces; the index's spelling is kept."""
    by_key: dict[str, tuple[int, str]] = {}
    for person_id, name, _category in principals:
        if name:
            by_key.setdefault(_name_key(name), (person_id, name))
    actors: dict[str, str] = {}
    unmatched: list[str] = []
    for name in names:
        match = by_key.get(_name_key(name))
        if match is None:
            unmatched.append(name)
        else:
            actors[match[1]] = person_url(match[0])
    return actors, unmatched


# --- the answer log --------------------------------------------------------------------


@dataclass
class AnswerLine:
    id: int
    url: str  # redacted
    http_status: int | None
    status: OmdbStatus
    answer: dict | None
    error: str | None
    retrieved_at: str  # ISO 8601, UTC


def read_answers(path: Path) -> tuple[dict[int, AnswerLine], int]:
    """The last answered line per id (``ANSWERED`` statuses), and how many lines could not
    be read (a run killed mid-write leaves at most one; it is skipped, nothing else lost)."""
    answered: dict[int, AnswerLine] = {}
    unreadable = 0
    if not Path(path).is_file():
        return answered, 0
    with open(path, encoding="utf-8") as lines:
        for text in lines:
            if not text.strip():
                continue
            try:
                line = AnswerLine(**json.loads(text))
            except (ValueError, TypeError):
                unreadable += 1
                continue
            if line.status in ANSWERED:
                answered[line.id] = line
    return answered, unreadable


class _AnswerWriter:
    def __init__(self, path: Path, key: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._key = key

    def write(self, line: AnswerLine) -> None:
        text = json.dumps(asdict(line), ensure_ascii=False, sort_keys=True)
        self._file.write(scrub(text, self._key) + "\n")
        self._file.flush()  # a run stopped at any point keeps every answer it had

    def close(self) -> None:
        self._file.close()


# --- the daily quota -------------------------------------------------------------------


class DailyQuota:
    """Requests to OMDb per UTC day across every partition and process, in one small
    JSON file under an exclusive lock. (OMDb's own "Request limit reached!" pauses the
    host instead: sources/pauses.py.)"""

    def __init__(self, path: Path, limit: int, today: Callable[[], str] | None = None):
        self.path = Path(path)
        self.limit = limit
        self._today = today or (lambda: datetime.now(UTC).date().isoformat())

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                write_atomic(self.path, json.dumps(state).encode())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict:
        today = self._today()
        try:
            state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("day") != today:
            state = {"day": today, "requests": 0}
        return state

    def take(self) -> bool:
        """Count one request if today's quota allows it."""
        with self._locked() as state:
            if state["requests"] >= self.limit:
                return False
            state["requests"] += 1
            return True

    def status(self) -> dict:
        state = self._read()
        return {"day": state["day"], "requests": state["requests"]}


# --- asking ------------------------------------------------------------------------------


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
    from ..net.client import HostPolicy

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
    writer = _AnswerWriter(folder.answers, key)
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


# --- records -----------------------------------------------------------------------------

OMDB_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("title", pa.string()),
        ("original_title", pa.string()),
        ("title_type", pa.string()),
        ("year", pa.int32()),
        ("genres", pa.list_(pa.string())),
        ("actors", pa.map_(pa.string(), pa.string())),  # matched names -> person URL
        ("actor_names", pa.list_(pa.string())),  # as OMDb gave them
        ("unmatched_actors", pa.int32()),
        ("poster_url", pa.string()),
        ("synopsis", pa.string()),
        ("certificate", pa.string()),
        ("is_adult", pa.bool_()),
        ("request_url", pa.string()),  # redacted
        ("retrieved_at", pa.string()),
    ]
)


@dataclass
class OmdbRecords:
    table: pa.Table
    counts: dict[str, int]

    def poster_hosts(self) -> set[str]:
        """The hosts of OMDb's poster URLs (the poster download must allow each)."""
        from urllib.parse import urlsplit

        urls = [u for u in self.table.column("poster_url").to_pylist() if u]
        return {(urlsplit(u).hostname or "").lower() for u in urls}


def build_omdb_records(folder: OmdbFolder, index_dir: Path | None = None) -> OmdbRecords:
    """The partition's OMDb records from its answer log (no network): one row per id
    OMDb knows, actor names joined to ids through the index's principals when it exists."""
    from ..imdb.dataset_index import has_index, index_title_cast

    answered, unreadable = read_answers(folder.answers)
    parsed = []
    for line in answered.values():
        fields = parse_answer(line.answer or {}) if line.status == "ok" else None
        if fields is not None and fields["id"] == line.id:
            parsed.append((line, fields))
    cast = {}
    if index_dir is not None and has_index(index_dir, "principals") and parsed:
        cast = index_title_cast(index_dir, [fields["id"] for _, fields in parsed])
    rows = []
    names_total = names_unmatched = na_posters = 0
    for line, fields in sorted(parsed, key=lambda item: item[1]["id"]):
        actors, unmatched = join_actor_names(fields["actor_names"], cast.get(fields["id"], []))
        names_total += len(fields["actor_names"])
        names_unmatched += len(unmatched)
        na_posters += fields["poster_url"] is None
        rows.append(
            {
                **fields,
                "actors": list(actors.items()),
                "unmatched_actors": len(unmatched),
                "request_url": line.url,
                "retrieved_at": line.retrieved_at,
            }
        )
    counts = {
        "answers": len(answered),
        "titles": len(rows),
        "not_found": sum(1 for line in answered.values() if line.status == "not_found"),
        "no_poster": na_posters,
        "actor_names": names_total,
        "actor_names_unmatched": names_unmatched,
        "unreadable_answer_lines": unreadable,
    }
    return OmdbRecords(pa.Table.from_pylist(rows, schema=OMDB_SCHEMA), counts)


def write_omdb_records(records: OmdbRecords, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(records.table, tmp)


def read_omdb_fields(path: Path | None) -> dict[int, dict[str, Any]]:
    """id -> title record fields from an ``omdb.parquet`` (empty when there is none)."""
    if path is None or not Path(path).is_file():
        return {}
    fields: dict[int, dict[str, Any]] = {}
    for row in pq.read_table(path, schema=OMDB_SCHEMA).to_pylist():
        row["actors"] = dict(row["actors"] or [])
        row["genres"] = list(row["genres"] or [])
        fields[row["id"]] = row
    return fields


# --- which ids -------------------------------------------------------------------------------


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
