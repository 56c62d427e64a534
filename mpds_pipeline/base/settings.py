"""Environment overrides, read once where the code location loads.

Every setting also has a Dagster-side home (resource config or asset config); the
environment only changes the defaults, so a deployment can be tuned without code.

A data directory may carry its own settings in ``<data dir>/settings.env`` (``KEY=VALUE``
lines; ``#`` comments), read wherever ``MPDS_DATA_DIR`` points: the demo records its
tiny models and id ranges there, so ``mpds ui``, ``mpds review`` and a plain ``dagster
job execute`` on the demo's data use what the demo used. A variable set in the
environment wins over the file.

| variable | default | meaning |
|---|---|---|
| MPDS_DATA_DIR | ./data | where every stage writes |
| MPDS_IMDB_BASE_URL | https://www.imdb.com | the IMDb host (the sample server in tests/demo) |
| MPDS_RATE | 1.0 | requests per second, global to one run |
| MPDS_CONCURRENCY | 4 | requests in flight |
| MPDS_TITLE_IDS | 1-1250000 | title id range crawled (the paper's) |
| MPDS_PERSON_IDS | 1-60000 | person id range crawled (the paper's) |
| MPDS_PARTITION_SIZE | 10000 | ids per partition |
| MPDS_CONTACT | (none) | e-mail or URL sent in the User-Agent |
| MPDS_PAGE_SOURCES | common_crawl,wayback | page sources tried in order (also: live) |
| MPDS_CC_INDEX_URL | https://index.commoncrawl.org | Common Crawl's CDX index server |
| MPDS_CC_DATA_URL | https://data.commoncrawl.org | Common Crawl's WARC files |
| MPDS_WAYBACK_URL | https://web.archive.org | the Wayback Machine (CDX and raw captures) |
| MPDS_OMDB_URL | https://www.omdbapi.com | OMDb (key: MPDS_OMDB_API_KEY, never logged) |
| MPDS_EDITION | research | which dataset the assets build: research or licence_clean |
| MPDS_AI_OPTOUT | 1 | honour AI opt-out signals on image downloads (0: research only; licence_clean forces 1) |
| MPDS_WIKIDATA_URL | https://www.wikidata.org | Wikidata (its API is <url>/w/api.php) |
| MPDS_WIKIDATA_SPARQL_URL | https://query.wikidata.org/sparql | the Wikidata query service |
| MPDS_COMMONS_URL | https://commons.wikimedia.org | Wikimedia Commons (its API is <url>/w/api.php) |
| MPDS_WIKIMEDIA_RATE | 2.0 | requests per second to each Wikimedia API host |
| MPDS_LICENCE_ALLOWLIST | public-domain,cc0,cc-by,cc-by-sa | licence families the licence-clean edition keeps |
| MPDS_CC_CRAWLS | (collinfo.json) | Common Crawl crawl ids to ask, in order |
| MPDS_CC_MAX_CRAWLS | 6 | crawls one partition may ask at most |
| MPDS_CAPTURE_POLICY | newest | which capture of an id wins: newest, oldest, or a crawl id |
| MPDS_CC_INDEX_RATE | 1.0 | requests/s to Common Crawl's index server |
| MPDS_CC_DATA_RATE | 1.0 | Range requests/s to Common Crawl's data host |
| MPDS_WAYBACK_RATE | 0.5 | requests/s to the Wayback Machine |
| MPDS_PAUSE_DAYS | 7 | days the automation leaves a host alone after it blocks (WAF) |
| MPDS_NEW_CRAWL_INTERVAL_S | 86400 | least seconds between two reads of collinfo.json (new_archive_crawls) |
"""

from __future__ import annotations

import functools
import os
from dataclasses import MISSING, field
from pathlib import Path

from .layout import DataLayout, default_data_dir


def read_settings_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped; an absent file is empty."""
    return dict(_read_settings_file(str(path), *_stamp(Path(path))))


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_settings_file(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    if size < 0:
        return ()
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"{path}, line {number}: expected KEY=VALUE, got {line!r}")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def write_settings_file(path: Path, values: dict[str, str], comment: str) -> None:
    """Write ``values`` as a settings file (replacing it), with ``comment`` on top."""
    lines = [f"# {text}" for text in comment.splitlines()]
    lines += [f"{name}={value}" for name, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def lookup(name: str) -> str:
    """The environment's value, else the data directory's settings file's, else ''."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    return read_settings_file(DataLayout(default_data_dir()).settings_file).get(name, "")


def env_str(name: str, default: str) -> str:
    return lookup(name) or default


def env_float(name: str, default: float) -> float:
    raw = lookup(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def env_int(name: str, default: int) -> int:
    raw = lookup(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def env_bool(name: str, default: bool) -> bool:
    """1/true/yes/on or 0/false/no/off; unset -> ``default``."""
    raw = lookup(name).strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a yes/no value (1/0, true/false)")


def env_list(name: str, default: list[str]) -> list[str]:
    """'a,b , c' -> ['a', 'b', 'c']; unset -> ``default``."""
    raw = lookup(name)
    if not raw:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_id_range(name: str, default: tuple[int, int]) -> tuple[int, int]:
    """'1-1250000' -> (1, 1250000)."""
    raw = lookup(name)
    if not raw:
        return default
    try:
        first, last = (int(part) for part in raw.split("-"))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an id range like 1-1250000") from None
    if first < 1 or last < first:
        raise ValueError(f"{name}={raw!r}: the range must be positive and ascending")
    return first, last


def setting(default=MISSING, doc: str = "", *, factory=MISSING, env: str | None = None, config_name: str | None = None):
    """One setting of a core settings dataclass, declared once: its default and ``doc``.

    The Dagster config or resource that exposes the setting derives its field from this
    (defs/settings_models.py), so the default and the description cannot drift apart.
    ``env`` names the variable that overrides the Dagster-side default when the code
    location loads (the core's default stays as written); ``config_name`` is the field's
    name in Dagster config where it differs from the core's.
    """
    metadata = {"doc": doc}
    if env:
        metadata["env"] = env
    if config_name:
        metadata["config_name"] = config_name
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)
