"""One OMDb request and its answer: the URL, what the answer says, and the answer log.

``classify`` sorts an answer (ok, not found, a refused key, the daily limit, a failure);
``parse_answer`` reads a title from it ("N/A" means missing, never a value; ``Rated``
becomes the certificate, ``Genre`` a list); ``join_actor_names`` matches OMDb's actor
names to person ids through the title's principals. Answers are kept as received in the
partition's ``answers.jsonl`` (redacted URL, HTTP status, the JSON answer, the time),
scrubbed of the key as a second guard, so the records can be rebuilt offline.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from ..imdb.ids import person_url, title_code
from ..imdb.page_data import full_size_image
from ..net.redact import REDACTED, redact_text

NA = "N/A"

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


def request_url(base_url: str, title_id: int, key: str) -> str:
    """The request for one id (the key in it: never store or log this, only its redaction)."""
    return f"{base_url.rstrip('/')}/?{urlencode({'i': title_code(title_id), 'apikey': key})}"


def scrub(text: str | None, key: str | None) -> str | None:
    """``text`` with the key gone, whatever shape it took there."""
    if text is None:
        return None
    text = redact_text(text)
    return text.replace(key, REDACTED) if key else text


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


class AnswerWriter:
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
