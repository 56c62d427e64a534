"""What the review page shows: one row per poster that can be reviewed.

``load_review_items`` joins, by IMDb title id, whatever of these exists under the data
directory (every file may be absent):

- ``curated/movies.parquet``: title, genres, actors, synopsis;
- ``prompts/vision_prompts/<partition>.parquet``: the BLIP-2 caption and its confidence
  (mean token log-probability: lower is weaker);
- ``prompts/poster_prompts.parquet``: the movie-synopsis prompt and the current
  integrated text;
- ``images/posters/<partition>/<id>.jpg``: the poster;
- the rectification store: the latest correction and its reviewer.

A poster is reviewable when it has a caption, a prompt row or an image; a movie with
none of these is left out.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from mpds_pipeline.curate.prompts import actor_names, synopsis_prompt
from mpds_pipeline.curate.rectify import Correction, read_corrections
from mpds_pipeline.imdb.partitions import parse_partition_key
from mpds_pipeline.layout import DataLayout

REVIEW_COLUMNS = [
    "id", "title", "genres", "partition", "image_path", "blip2_caption", "confidence",
    "synopsis_prompt", "current_text", "correction_text", "correction_reviewer", "correction_at",
]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def movies_file(layout: DataLayout) -> Path:
    return layout.curated_dir / "movies.parquet"


def poster_prompts_file(layout: DataLayout) -> Path:
    return layout.prompts_dir / "poster_prompts.parquet"


def vision_prompts_dir(layout: DataLayout) -> Path:
    # DataLayout names files per partition; the folder is the parent of any of them.
    return layout.vision_prompts_file("x").parent


def poster_images_root(layout: DataLayout) -> Path:
    return layout.poster_images_dir("x").parent


def load_review_items(layout: DataLayout) -> pd.DataFrame:
    """One row per reviewable poster, ``REVIEW_COLUMNS``, sorted by id (missing values: NA)."""
    base = load_base_items(layout)
    corrections, _, _ = read_corrections(layout.rectifications_dir)
    return attach_corrections(base, latest_corrections(corrections))


def load_base_items(layout: DataLayout) -> pd.DataFrame:
    """Everything but the corrections (which change while the page runs)."""
    movies = _read_movies(layout)
    captions = _read_captions(layout)
    prompts = _read_poster_prompts(layout)
    images = _scan_images(layout)

    ids = sorted(set(captions) | set(prompts) | set(images))
    rows = []
    for movie_id in ids:
        movie = movies.get(movie_id, {})
        caption = captions.get(movie_id, {})
        prompt = prompts.get(movie_id, {})
        partition, image_path = images.get(movie_id, (caption.get("partition"), None))
        synopsis = prompt.get("synopsis_prompt")
        if synopsis is None and movie:
            synopsis = synopsis_prompt(
                movie["title"], movie["genres"], actor_names(movie.get("actors"))[:3], movie.get("synopsis")
            )
        rows.append(
            {
                "id": movie_id,
                "title": movie.get("title", ""),
                "genres": movie.get("genres", []),
                "partition": partition,
                "image_path": image_path,
                "blip2_caption": caption.get("caption"),
                "confidence": caption.get("confidence"),
                "synopsis_prompt": synopsis,
                "current_text": prompt.get("text"),
            }
        )
    frame = pd.DataFrame(rows, columns=REVIEW_COLUMNS[:9])
    frame["id"] = frame["id"].astype("int64")
    frame["confidence"] = frame["confidence"].astype("float64")
    return frame


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


def _read_parquet(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_parquet(path)


def _read_movies(layout: DataLayout) -> dict[int, dict]:
    frame = _read_parquet(movies_file(layout))
    if frame is None or frame.empty:
        return {}
    movies = {}
    for row in frame.to_dict("records"):
        movies[int(row["id"])] = {
            "title": " ".join(str(_clean(row.get("title")) or "").split()),
            "genres": _as_strings(row.get("genres")),
            "actors": _clean(row.get("actors")),
            "synopsis": _clean(row.get("synopsis")),
        }
    return movies


def _read_captions(layout: DataLayout) -> dict[int, dict]:
    """The newest usable caption per id (a row with an error keeps its id reviewable)."""
    folder = vision_prompts_dir(layout)
    captions: dict[int, dict] = {}
    if not folder.is_dir():
        return captions
    for path in sorted(folder.glob("*.parquet")):
        partition = _partition_or_none(path.stem)
        frame = pd.read_parquet(path)
        if frame.empty:
            continue
        if "created_at" in frame.columns:
            frame = frame.sort_values("created_at", kind="stable")
        for row in frame.to_dict("records"):
            movie_id = int(row["id"])
            caption = _clean(row.get("caption"))
            usable = caption is not None and _clean(row.get("error")) is None and str(caption).strip()
            if usable or movie_id not in captions:
                captions[movie_id] = {
                    "caption": " ".join(str(caption).split()) if usable else None,
                    "confidence": _float(row.get("confidence")) if usable else None,
                    "partition": partition,
                }
    return captions


def _read_poster_prompts(layout: DataLayout) -> dict[int, dict]:
    frame = _read_parquet(poster_prompts_file(layout))
    if frame is None or frame.empty:
        return {}
    return {
        int(row["id"]): {"synopsis_prompt": _clean(row.get("synopsis_prompt")), "text": _clean(row.get("text"))}
        for row in frame.to_dict("records")
    }


def _scan_images(layout: DataLayout) -> dict[int, tuple[str, str]]:
    """id -> (partition key, image path) for every poster file in a partition folder."""
    root = poster_images_root(layout)
    found: dict[int, tuple[str, str]] = {}
    if not root.is_dir():
        return found
    for partition_dir in sorted(os.scandir(root), key=lambda e: e.name):
        if not partition_dir.is_dir() or _partition_or_none(partition_dir.name) is None:
            continue
        for entry in os.scandir(partition_dir.path):
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in IMAGE_SUFFIXES and stem.isdigit() and entry.is_file():
                found[int(stem)] = (partition_dir.name, entry.path)
    return found


def _partition_or_none(key: str) -> str | None:
    try:
        parse_partition_key(key)
    except ValueError:
        return None
    return key


def _clean(value: Any) -> Any:
    """Missing values (None, NaN, NA) as None."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if value is pd.NA or value is pd.NaT:
            return None
    except TypeError:
        pass
    return value


def _float(value: Any) -> float | None:
    value = _clean(value)
    return None if value is None else float(value)


def _as_strings(value: Any) -> list[str]:
    value = _clean(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
