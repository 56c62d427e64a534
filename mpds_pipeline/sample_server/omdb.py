"""OMDb as the sample server emulates it, under ``/omdb/``.

Answers have the shapes of OMDb's real recorded answers, with its errors (bad or missing
key, daily limit, unknown id), and agree with the sample pages. See docs/sources-omdb.md.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from urllib.parse import parse_qs

from .content import sample_title
from .pages import image_url

PREFIX = "/omdb"
DEFAULT_KEYS = frozenset({"sample-omdb-key"})
_ID_RE = re.compile(r"^tt(\d{7,9})$")
_TYPES = {"tvSeries": "series", "tvMiniSeries": "series", "tvEpisode": "episode"}
NA = "N/A"


class OmdbEmulator:
    """One emulated OMDb; ``route`` is the server's extra route."""

    def __init__(self, keys: frozenset[str] = DEFAULT_KEYS, daily_limit: int | None = None):
        self.keys = set(keys)
        self.daily_limit = daily_limit
        self.asked: list[str] = []  # every ``i`` asked, in order (errors included)
        self._used: Counter = Counter()
        self._lock = threading.Lock()

    def new_day(self) -> None:
        """OMDb's day rolls over: every key's count starts again."""
        with self._lock:
            self._used.clear()

    def route(self, server, path: str, query: str, headers: Mapping[str, str]):
        from .server import _Reply

        if path.rstrip("/") != PREFIX:
            return None
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        key = params.get("apikey", "")
        with self._lock:
            self.asked.append(params.get("i", ""))
            if not key:
                return _json(_Reply, 401, {"Response": "False", "Error": "No API key provided."})
            if key not in self.keys:
                return _json(_Reply, 401, {"Response": "False", "Error": "Invalid API key!"})
            if self.daily_limit is not None and self._used[key] >= self.daily_limit:
                return _json(_Reply, 401, {"Response": "False", "Error": "Request limit reached!"})
            self._used[key] += 1
        match = _ID_RE.match(params.get("i", ""))
        truth = sample_title(int(match.group(1)), server.seed) if match else None
        if truth is None or truth["status"] != "ok":
            return _json(_Reply, 200, {"Response": "False", "Error": "Incorrect IMDb ID."})
        return _json(_Reply, 200, answer_for(truth, server.base_url))


def answer_for(truth: dict, base: str) -> dict:
    """OMDb's answer for a sample title (keys in OMDb's order)."""
    plot = truth["plot"] or f"{truth['title']}: a story told in {truth['year']}."
    poster = image_url(base, truth["poster_token"], "SX300") if truth["poster_token"] else NA
    actors = ", ".join(name for _, name in truth["cast"][:4]) or NA
    return {
        "Title": truth["title"],
        "Year": str(truth["year"]),
        "Rated": truth["certificate"] or NA,
        "Released": NA,
        "Runtime": NA,
        "Genre": ", ".join(truth["genres"]) or NA,
        "Director": NA,
        "Writer": NA,
        "Actors": actors,
        "Plot": plot,
        "Language": NA,
        "Country": NA,
        "Awards": NA,
        "Poster": poster,
        "Ratings": [],
        "Metascore": NA,
        "imdbRating": NA,
        "imdbVotes": NA,
        "imdbID": f"tt{truth['id']:07d}",
        "Type": _TYPES.get(truth["title_type"], "movie"),
        "DVD": NA,
        "BoxOffice": NA,
        "Production": NA,
        "Website": NA,
        "Response": "True",
    }


def _json(reply_type, status: int, body: dict):
    return reply_type(status, json.dumps(body, separators=(",", ":")).encode(), "application/json; charset=utf-8")
