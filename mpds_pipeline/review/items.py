"""What the review page shows: one row per poster that can be reviewed.

``load_review_items`` joins, by title id, whatever exists under the data directory (the
curated movies, captions, prompts, verified posters and the corrections). A poster is
reviewable when a correction of it can reach the export. See docs/captions-review.md.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ..base.layout import DataLayout
from ..curate.image_checks import OK
from ..curate.manifest import read_manifest
from ..curate.prompts import actor_names, synopsis_prompt
from ..curate.rectify import Correction, read_corrections
from ..imdb.partitions import parse_partition_key

REVIEW_COLUMNS = [
    "id",
    "title",
    "genres",
    "partition",
    "image_path",
    "blip2_caption",
    "confidence",
    "synopsis_prompt",
    "current_text",
    "merged_vision_text",
    "correction_text",
    "correction_reviewer",
    "correction_at",
]
BASE_COLUMNS = REVIEW_COLUMNS[:10] + ["verified_image"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def load_review_items(layout: DataLayout) -> pd.DataFrame:
    """One row per reviewable poster, ``REVIEW_COLUMNS``, sorted by id (missing values: NA)."""
    base = load_base_items(layout)
    corrections, _, _ = read_corrections(layout.rectifications_dir)
    return attach_corrections(reviewable(base), latest_corrections(corrections))


def reviewable(base: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``load_base_items`` that can reach the export."""
    return base[base["verified_image"]].reset_index(drop=True)


def load_base_items(layout: DataLayout) -> pd.DataFrame:
    """Everything but the corrections (which change while the page runs): one row per
    poster with a caption, a prompt row or a verified image, ``BASE_COLUMNS``."""
    captions = _read_captions(layout)
    prompts = _read_poster_prompts(layout)
    images = _verified_images(layout)
    ids = pd.Index(captions["id"]).union(pd.Index(prompts["id"])).union(pd.Index(images["id"]))
    movies = _read_movies(layout, ids)
    if layout.movies_file.is_file():  # a poster of a movie the filters dropped is not exported
        ids = ids.intersection(pd.Index(movies["id"]))
    frame = pd.DataFrame({"id": ids.astype("int64")})
    if frame.empty:
        empty = pd.DataFrame(columns=BASE_COLUMNS).astype({"id": "int64", "confidence": "float64"})
        return empty.astype({"verified_image": "bool"})
    frame = (
        frame.merge(movies, on="id", how="left")
        .merge(images, on="id", how="left")
        .merge(captions, on="id", how="left", suffixes=("", "_caption"))
        .merge(prompts, on="id", how="left")
    )
    # A poster without an image file still belongs to the partition its caption came from.
    frame["partition"] = frame["partition"].fillna(frame["partition_caption"])
    missing = frame["synopsis_prompt"].isna() & frame["title"].notna()
    if missing.any():  # no prompt row yet: build the synopsis prompt from the movie
        todo = frame.loc[missing]
        frame["synopsis_prompt"] = frame["synopsis_prompt"].astype(object)  # all-NA reads as float
        nothing = [None] * len(todo)
        actors = todo["actors"] if "actors" in todo.columns else nothing
        synopses = todo["synopsis"] if "synopsis" in todo.columns else nothing
        frame.loc[missing, "synopsis_prompt"] = [
            synopsis_prompt(_title(t), _as_strings(g), actor_names(_clean(a))[:3], _clean(s))
            for t, g, a, s in zip(todo["title"], todo["genres"], actors, synopses)
        ]
    frame["title"] = [_title(t) for t in frame["title"]]
    frame["genres"] = [_as_strings(g) for g in frame["genres"]]
    frame = frame.rename(
        columns={"caption": "blip2_caption", "text": "current_text", "vision_prompt": "merged_vision_text"}
    )
    frame["confidence"] = frame["confidence"].astype("float64")
    frame["verified_image"] = frame["image_path"].notna()
    return frame[BASE_COLUMNS].sort_values("id").reset_index(drop=True)


def latest_corrections(corrections: list[Correction]) -> dict[int, Correction]:
    """The winning correction per id, by the store's own rule (``Correction.sort_key``)."""
    latest: dict[int, Correction] = {}
    for item in corrections:
        held = latest.get(item.id)
        if held is None or item.sort_key() > held.sort_key():
            latest[item.id] = item
    return latest


def attach_corrections(base: pd.DataFrame, latest: dict[int, Correction]) -> pd.DataFrame:
    frame = base.copy()
    found = [latest.get(int(i)) for i in frame["id"]]
    frame["correction_text"] = [c.text if c else None for c in found]
    frame["correction_reviewer"] = [c.reviewer if c else None for c in found]
    frame["correction_at"] = pd.to_datetime([c.created_at if c else None for c in found], utc=True)
    return frame[REVIEW_COLUMNS]


# --------------------------------------------------------------------------- readers


def _columns(path: Path, wanted: list[str]) -> list[str]:
    present = set(pq.read_schema(path).names)
    return [c for c in wanted if c in present]


def _read_movies(layout: DataLayout, ids: pd.Index) -> pd.DataFrame:
    path = layout.movies_file
    empty = pd.DataFrame({"id": pd.Series(dtype="int64"), "title": [], "genres": []})
    if not path.is_file():
        return empty
    frame = pd.read_parquet(path, columns=_columns(path, ["id", "title", "genres", "actors", "synopsis"]))
    if "id" not in frame.columns:
        return empty
    frame = frame[frame["id"].isin(ids)].drop_duplicates("id", keep="last")
    for column in ("title", "genres"):
        if column not in frame.columns:
            frame[column] = None
    return frame.astype({"id": "int64"})


def _read_captions(layout: DataLayout) -> pd.DataFrame:
    """The newest usable caption per id (a row with an error keeps its id reviewable)."""
    folder = layout.vision_prompts_dir
    parts = []
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        columns = _columns(path, ["id", "caption", "confidence", "created_at", "error"])
        if "id" not in columns:
            continue
        part = pd.read_parquet(path, columns=columns)
        part["partition"] = _partition_or_none(path.stem)
        parts.append(part)
    result_columns = ["id", "caption", "confidence", "partition"]
    if not parts:
        return pd.DataFrame({"id": pd.Series(dtype="int64"), "caption": [], "confidence": [], "partition": []})
    frame = pd.concat(parts, ignore_index=True)
    for column in ("caption", "confidence", "error"):
        if column not in frame.columns:
            frame[column] = None
    frame["caption"] = frame["caption"].map(lambda c: None if _clean(c) is None else " ".join(str(c).split()) or None)
    usable = frame["caption"].notna() & frame["error"].isna()
    frame["usable"] = usable
    order = ["usable", "created_at"] if "created_at" in frame.columns else ["usable"]
    frame = frame.sort_values(order, kind="stable", na_position="first").drop_duplicates("id", keep="last")
    frame.loc[~frame["usable"], ["caption", "confidence"]] = None
    return frame[result_columns].astype({"id": "int64"})


def _read_poster_prompts(layout: DataLayout) -> pd.DataFrame:
    path = layout.poster_prompts_file
    wanted = ["synopsis_prompt", "text", "vision_prompt"]
    empty = pd.DataFrame({"id": pd.Series(dtype="int64"), **{c: [] for c in wanted}})
    if not path.is_file():
        return empty
    frame = pd.read_parquet(path, columns=_columns(path, ["id", *wanted]))
    if "id" not in frame.columns:
        return empty
    for column in wanted:
        if column not in frame.columns:
            frame[column] = None
    return frame.drop_duplicates("id", keep="last").astype({"id": "int64"})


def _verified_images(layout: DataLayout) -> pd.DataFrame:
    """id, partition key, image path of every poster its partition's download manifest
    lists as ok, when the file is there (a file without a manifest row is not): the
    export's rule for posters.csv."""
    root = layout.poster_images_root
    found: dict[int, tuple[str, str]] = {}
    partitions = sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else []
    for partition_dir in partitions:
        if not partition_dir.is_dir() or _partition_or_none(partition_dir.name) is None:
            continue
        manifest = read_manifest(Path(partition_dir.path))
        present = {entry.name for entry in os.scandir(partition_dir.path) if entry.is_file()}
        verified = manifest[(manifest["status"] == OK) & manifest["file_name"].isin(present)]
        for movie_id, name in zip(verified["id"], verified["file_name"]):
            if name.lower().endswith(IMAGE_SUFFIXES):
                found[int(movie_id)] = (partition_dir.name, os.path.join(partition_dir.path, name))
    return pd.DataFrame(
        {
            "id": pd.Series(list(found), dtype="int64"),
            "partition": [p for p, _ in found.values()],
            "image_path": [i for _, i in found.values()],
        }
    )


def _partition_or_none(key: str) -> str | None:
    try:
        parse_partition_key(key)
    except ValueError:
        return None
    return key


def _clean(value: Any) -> Any:
    """Missing values (None, NaN, NA, NaT) as None; arrays and lists as they are."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _title(value: Any) -> str:
    return " ".join(str(_clean(value) or "").split())


def _as_strings(value: Any) -> list[str]:
    value = _clean(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
