"""The export's asset checks: the release contract that a written export must meet.

Schemas exactly the paper's, unique ids, a decodable image of a minimum size for every
posters.csv row, no adult title, and URLs in the paper's formats; each check is a
``RuleResult`` that the Dagster layer turns into an asset check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from ..base.folders import RELEASE_TABLES, ExportFolder
from ..base.rules import RuleResult
from ..imdb.ids import person_url, title_url
from .export_tables import ACTORS_COLUMNS, ACTORS_SCHEMA, META_COLUMNS, META_SCHEMA, POSTERS_COLUMNS, POSTERS_SCHEMA
from .filters import as_genre_list

MIN_IMAGE_BYTES = 5120
TITLE_URL_RE = re.compile(r"^https://www\.imdb\.com/title/tt\d{7,9}$")
PERSON_URL_RE = re.compile(r"^https://www\.imdb\.com/name/nm\d{7,9}$")
HTTP_URL_RE = re.compile(r"^https?://[^\s/]+/\S*$")


def check_export(
    export_dir: Path,
    adult_ids: Iterable[int] = (),
    min_image_bytes: int = MIN_IMAGE_BYTES,
) -> list[RuleResult]:
    """The export's asset checks: schemas, unique ids, poster images, no adult row, URLs.

    ``adult_ids`` are the ids the filters dropped as adult (from the movie decisions);
    rows with the genre "Adult" fail the check whether or not they are listed.
    """
    export = ExportFolder(Path(export_dir))
    frames = {name: _read_csv_strict(export.csv(name)) for name in RELEASE_TABLES}
    return [
        _check_schemas(export, frames),
        _check_unique_ids(export, frames),
        _check_poster_images(export, frames["posters"], min_image_bytes),
        _check_no_adult(frames["meta"], set(int(i) for i in adult_ids)),
        _check_urls(frames),
    ]


def _read_csv_strict(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def _check_schemas(export: ExportFolder, frames: dict) -> RuleResult:
    problems = []
    expected = {
        "meta": (META_COLUMNS, META_SCHEMA),
        "posters": (POSTERS_COLUMNS, POSTERS_SCHEMA),
        "actors": (ACTORS_COLUMNS, ACTORS_SCHEMA),
    }
    for name, (columns, schema) in expected.items():
        frame = frames[name]
        if frame is None:
            problems.append(f"{name}.csv is missing")
        elif list(frame.columns) != columns:
            problems.append(f"{name}.csv columns {list(frame.columns)} != {columns}")
        parquet = export.parquet(name)
        if not parquet.is_file():
            problems.append(f"{name}.parquet is missing")
            continue
        actual = pq.read_schema(parquet)
        for want in schema:
            if actual.get_field_index(want.name) < 0:
                problems.append(f"{name}.parquet lacks {want.name}")
            elif not actual.field(want.name).type.equals(want.type):
                problems.append(f"{name}.parquet {want.name} is {actual.field(want.name).type}, not {want.type}")
    return RuleResult(
        "export_schemas",
        not problems,
        "CSV columns and Parquet types are exactly the release format",
        {"problems": problems[:20]},
    )


def _check_unique_ids(export: ExportFolder, frames: dict) -> RuleResult:
    duplicates = {}
    for name, frame in frames.items():
        if frame is not None:
            counts = frame["id"].value_counts() if "id" in frame else pd.Series(dtype=int)
            dup = counts[counts > 1]
            if len(dup):
                duplicates[export.csv(name).name] = dup.index.tolist()[:20]
    return RuleResult("export_unique_ids", not duplicates, "ids are unique in every CSV", {"duplicates": duplicates})


def _check_poster_images(export: ExportFolder, posters: pd.DataFrame | None, min_bytes: int) -> RuleResult:
    bad: list[str] = []
    checked = 0
    for poster_id in [] if posters is None else posters["id"]:
        path = export.poster(poster_id)
        checked += 1
        if not path.is_file():
            bad.append(f"{poster_id}: no image")
            continue
        size = path.stat().st_size
        if size < min_bytes:
            bad.append(f"{poster_id}: {size} bytes")
            continue
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            bad.append(f"{poster_id}: does not decode ({error})")
    lines = 0
    jsonl = export.posters_metadata
    if jsonl.is_file():
        lines = sum(1 for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip())
    if lines != checked:
        bad.append(f"metadata.jsonl has {lines} rows, posters.csv {checked}")
    return RuleResult(
        "export_poster_images",
        not bad,
        f"every posters.csv id has an image of at least {min_bytes} bytes that decodes",
        {"checked": checked, "problems": bad[:20], "failures": len(bad)},
    )


def _check_no_adult(meta: pd.DataFrame | None, adult_ids: set[int]) -> RuleResult:
    found = []
    for row in [] if meta is None else meta.to_dict("records"):
        genres = as_genre_list(row.get("genres"))
        if any(g.lower() == "adult" for g in genres) or (row["id"].isdigit() and int(row["id"]) in adult_ids):
            found.append(row["id"])
    return RuleResult("export_no_adult", not found, "no adult title in meta.csv", {"adult_ids": found[:20]})


def _check_urls(frames: dict) -> RuleResult:
    bad: list[str] = []
    meta, actors = frames["meta"], frames["actors"]
    for row in [] if meta is None else meta.to_dict("records"):
        expected = title_url(int(row["id"])) if row["id"].isdigit() and int(row["id"]) > 0 else None
        if row["movie-url"] != expected or not TITLE_URL_RE.match(row["movie-url"]):
            bad.append(f"meta {row['id']}: movie-url {row['movie-url']}")
        if row["poster-url"] and not HTTP_URL_RE.match(row["poster-url"]):
            bad.append(f"meta {row['id']}: poster-url {row['poster-url'][:60]}")
        try:
            cast = json.loads(row["actors"]) if row["actors"] else {}
        except ValueError:
            cast = None
        if not isinstance(cast, dict) or not all(PERSON_URL_RE.match(str(u)) for u in cast.values()):
            bad.append(f"meta {row['id']}: actors {row['actors'][:60]}")
    for row in [] if actors is None else actors.to_dict("records"):
        if not PERSON_URL_RE.match(row["actors-url"]) or (
            row["id"].isdigit() and row["actors-url"] != person_url(int(row["id"]))
        ):
            bad.append(f"actors {row['id']}: actors-url {row['actors-url']}")
        if row["image-url"] and not HTTP_URL_RE.match(row["image-url"]):
            bad.append(f"actors {row['id']}: image-url {row['image-url'][:60]}")
    return RuleResult(
        "export_url_formats", not bad, "URLs are in the paper's formats", {"problems": bad[:20], "failures": len(bad)}
    )
