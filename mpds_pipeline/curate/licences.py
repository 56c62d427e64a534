"""Licences of exported images, and what the licence-clean edition builds from.

From the Wikimedia tables (which Commons files a movie or actor links to, and each
file's licence and credit) it makes the export's licence columns, ``attribution.csv`` and
the licence-clean edition's inputs (posters, actor images, movie metadata).
See docs/licence-clean.md.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..base.files import atomic_path
from ..base.folders import ExportFolder, ImageFolder
from ..base.layout import LICENCE_CLEAN
from ..sources.commons import COMMONS_FILE_COLUMNS, KEPT
from .filters import as_text
from .image_checks import OK
from .manifest import read_manifest

LICENCE_COLUMNS = ["licence", "licence_url", "attribution", "source_page"]
ATTRIBUTION_COLUMNS = [
    "file_name",
    "kind",
    "id",
    "title",
    "author",
    "credit",
    "licence",
    "licence_url",
    "source_page",
    "attribution",
]
# Why a movie or actor of the licence-clean edition has no image (counted).
NO_WIKIDATA_ITEM = "no_wikidata_item"
NO_COMMONS_FILE = "no_commons_file"


def ai_optout_in_force(edition: str, requested: bool) -> bool:
    """The licence-clean edition always honours opt-outs; research may turn them off."""
    return True if edition == LICENCE_CLEAN else bool(requested)


def kept_files(files: pd.DataFrame) -> pd.DataFrame:
    return files[files["decision"] == KEPT] if len(files) else files


def download_url(file: dict) -> str | None:
    """What the pipeline downloads of a file: the standard-width thumbnail, else the original."""
    return as_text(file.get("thumb_url")) or as_text(file.get("image_url"))


def _files_by_url(files: pd.DataFrame) -> dict[str, dict]:
    by_url: dict[str, dict] = {}
    for file in files.to_dict("records") if len(files) else []:
        for key in ("thumb_url", "image_url"):
            url = as_text(file.get(key))
            if url:
                by_url.setdefault(url, file)
    return by_url


def licence_columns(rows: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    """For rows with an ``image_url`` (export rows: kind, id, image_url ...), their
    ``licence, licence_url, attribution, source_page``, by the Commons file the URL is
    (original or thumbnail); None for images that are not Wikimedia files. Aligned with
    ``rows`` (same index)."""
    by_url = _files_by_url(files)
    out = []
    for url in rows["image_url"] if "image_url" in rows else [None] * len(rows):
        file = by_url.get(as_text(url) or "")
        out.append({c: (as_text(file.get(c)) if file else None) for c in LICENCE_COLUMNS})
    return pd.DataFrame(out, columns=LICENCE_COLUMNS, index=rows.index)


# --- the export's images and their attribution ---------------------------------------------


def export_image_rows(
    export_dir: Path, poster_dirs: Sequence[Path], actor_images_dir: Path | None = None
) -> pd.DataFrame:
    """Every image file of an export with the URL it was downloaded from: ``kind``
    (poster, actor_image, actor_photo), ``id``, ``file_name`` (relative to the export),
    ``image_url``."""
    export = ExportFolder(Path(export_dir))
    rows: list[dict] = []
    posters = pd.read_csv(export.posters_csv, usecols=["id"]) if export.posters_csv.is_file() else None
    urls = _ok_urls(poster_dirs)
    for movie_id in posters["id"].astype(int) if posters is not None else []:
        name = export.poster_file_name(int(movie_id))
        rows.append(
            {
                "kind": "poster",
                "id": int(movie_id),
                "file_name": f"{export.posters_dir.name}/{name}",
                "image_url": urls.get(name),
            }
        )
    if actor_images_dir is not None and export.actors_dir.is_dir():
        actor_urls = _ok_urls([actor_images_dir])
        for path in sorted(export.actors_dir.glob("*.jpg")):
            rows.append(
                {
                    "kind": "actor_image",
                    "id": int(path.stem.split("_")[0]),
                    "file_name": f"{export.actors_dir.name}/{path.name}",
                    "image_url": actor_urls.get(path.name),
                }
            )
    if export.actor_photos_csv.is_file():
        photos = pd.read_csv(export.actor_photos_csv, usecols=["actor_id", "file_name", "photo_url"])
        for photo in photos.to_dict("records"):
            rows.append(
                {
                    "kind": "actor_photo",
                    "id": int(photo["actor_id"]),
                    "file_name": photo["file_name"],
                    "image_url": as_text(photo["photo_url"]),
                }
            )
    return pd.DataFrame(rows, columns=["kind", "id", "file_name", "image_url"])


def _ok_urls(dirs: Iterable[Path]) -> dict[str, str]:
    """file name -> URL of the ok manifest rows of ``dirs`` (the first folder wins)."""
    urls: dict[str, str] = {}
    for folder in dirs:
        if not ImageFolder(Path(folder)).manifest.is_file():
            continue
        manifest = read_manifest(folder)
        for name, url in zip(
            manifest.loc[manifest["status"] == OK, "file_name"], manifest.loc[manifest["status"] == OK, "url"]
        ):
            urls.setdefault(name, url)
    return urls


@dataclass
class Attribution:
    rows: pd.DataFrame  # export_image_rows + LICENCE_COLUMNS + author/credit/title
    path: Path | None = None

    @property
    def licensed(self) -> pd.DataFrame:
        return self.rows[self.rows["licence"].notna()]

    def per_licence(self) -> dict[str, int]:
        return dict(Counter(self.licensed["licence"]))

    def per_kind(self) -> dict[str, int]:
        return dict(Counter(self.rows["kind"]))


def attribute(rows: pd.DataFrame, files: pd.DataFrame) -> Attribution:
    """``rows`` with their licence, author, credit and file title."""
    columns = licence_columns(rows, files)
    by_url = _files_by_url(files)
    extra = pd.DataFrame(
        [
            {
                "title": as_text(file.get("file_title")) if file else None,
                "author": as_text(file.get("artist")) if file else None,
                "credit": as_text(file.get("credit")) if file else None,
                "licence_family": as_text(file.get("licence_family")) if file else None,
            }
            for file in (by_url.get(as_text(u) or "") for u in rows["image_url"])
        ],
        columns=["title", "author", "credit", "licence_family"],
        index=rows.index,
    )
    return Attribution(pd.concat([rows, columns, extra], axis=1))


def write_attribution(attribution: Attribution, export_dir: Path) -> Path:
    """``attribution.csv``: one row per exported Wikimedia image (title, author, licence,
    source), in the form Commons' reuse guide asks for; publishable as it is."""
    path = ExportFolder(Path(export_dir)).attribution_csv
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = attribution.licensed.sort_values(["kind", "id", "file_name"])
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ATTRIBUTION_COLUMNS)
        for row in rows.to_dict("records"):
            title = (row["title"] or "").removeprefix("File:")
            writer.writerow(
                [row["file_name"], row["kind"], row["id"], title, *(row[c] for c in ATTRIBUTION_COLUMNS[4:])]
            )
    attribution.path = path
    return path


# --- the licence-clean edition's inputs -----------------------------------------------------


@dataclass
class EditionInputs:
    """What the licence-clean edition downloads, and why some have nothing (counted)."""

    items: list[tuple[int, int, str]] = field(default_factory=list)  # (id, variant, url)
    missing: Counter = field(default_factory=Counter)  # reason -> ids without an image

    def metadata(self) -> dict[str, int]:
        return {
            "licensed_images": len(self.items),
            **{f"without_image_{k}": v for k, v in sorted(self.missing.items())},
        }


def _files_by_title(files: pd.DataFrame) -> dict[str, dict]:
    return {f["file_title"]: f for f in files.to_dict("records")} if len(files) else {}


def licence_clean_posters(movie_ids: Iterable[int], items: pd.DataFrame, files: pd.DataFrame) -> EditionInputs:
    """(id, 1, url) of each movie's Commons poster (P3383) whose licence is allowlisted;
    the others counted by why: no item, no poster file, or the file's refusal reason."""
    by_id = {int(r["id"]): r for r in items[items["kind"] == "title"].to_dict("records")} if len(items) else {}
    by_title = _files_by_title(files)
    inputs = EditionInputs()
    for movie_id in sorted(set(int(i) for i in movie_ids)):
        item = by_id.get(movie_id)
        file = by_title.get(as_text(item.get("poster_file")) or "") if item else None
        if item is None:
            inputs.missing[NO_WIKIDATA_ITEM] += 1
        elif file is None:
            inputs.missing[NO_COMMONS_FILE] += 1
        elif file["decision"] != KEPT:
            inputs.missing[file["decision"]] += 1
        else:
            inputs.items.append((movie_id, 1, download_url(file)))
    return inputs


def licence_clean_actors(
    actors: pd.DataFrame, items: pd.DataFrame, files: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, EditionInputs]:
    """The actors table and person photos the actor steps read, from Commons only:
    ``image_url`` is the person's P18 file, the photos are their P373 category's files
    (allowlisted licences only; captioned with the actor's name, so the face step checks
    each against the portrait). Actors without a licensed portrait are left out."""
    by_id = {int(r["id"]): r for r in items[items["kind"] == "person"].to_dict("records")} if len(items) else {}
    by_title = _files_by_title(files)
    inputs = EditionInputs()
    kept_actors, persons = [], []
    for actor in actors.to_dict("records"):
        actor_id = int(actor["id"])
        item = by_id.get(actor_id)
        portrait = by_title.get(as_text(item.get("image_file")) or "") if item else None
        if item is None:
            inputs.missing[NO_WIKIDATA_ITEM] += 1
            continue
        if portrait is None:
            inputs.missing[NO_COMMONS_FILE] += 1
            continue
        if portrait["decision"] != KEPT:
            inputs.missing[portrait["decision"]] += 1
            continue
        name = as_text(actor.get("name"))
        photos = []
        listed = item.get("category_files")
        for title in [] if listed is None or isinstance(listed, float) else list(listed):
            file = by_title.get(title)
            if file is not None and file["decision"] == KEPT and title != portrait["file_title"]:
                photos.append({"url": download_url(file), "caption": name, "tagged_ids": None, "source": "commons"})
        kept_actors.append({**actor, "image_url": download_url(portrait), "image_urls": [p["url"] for p in photos]})
        persons.append({"id": actor_id, "name": name, "photos": photos})
        inputs.items.append((actor_id, 1, download_url(portrait)))
    return (
        pd.DataFrame(kept_actors, columns=[*actors.columns, *(["image_urls"] if "image_urls" not in actors else [])]),
        pd.DataFrame(persons, columns=["id", "name", "photos"]),
        inputs,
    )


def licence_clean_movies(movies: pd.DataFrame, items: pd.DataFrame, files: pd.DataFrame, index_dir: Path | None):
    """The movies table with metadata from CC0 Wikidata and the IMDb datasets only: the
    title is the item's label (else the datasets' primary title), the genres the
    datasets' (else none), the synopsis the item's description, ``poster_url`` the
    Commons original. Cast names stay (the datasets' principals list the same people)."""
    from ..imdb.dataset_index import has_index, index_title_facts

    ids = [int(i) for i in movies["id"]]
    facts = index_title_facts(index_dir, ids) if index_dir is not None and has_index(index_dir) else {}
    by_id = {int(r["id"]): r for r in items[items["kind"] == "title"].to_dict("records")} if len(items) else {}
    by_title = _files_by_title(files)
    out = movies.copy()
    titles, genres, synopses, posters = [], [], [], []
    for movie_id in ids:
        item, fact = by_id.get(movie_id) or {}, facts.get(movie_id) or {}
        titles.append(as_text(item.get("label")) or as_text(fact.get("primary_title")))
        genres.append(list(fact.get("genres") or []))
        synopses.append(as_text(item.get("description")))
        file = by_title.get(as_text(item.get("poster_file")) or "")
        posters.append(as_text(file.get("image_url")) if file and file["decision"] == KEPT else None)
    out["title"], out["genres"], out["synopsis"], out["poster_url"] = titles, genres, synopses, posters
    return out


WIKIMEDIA_SOURCE = "wikimedia_commons"


def add_licences(provenance_rows: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    """Provenance rows (``curate/provenance.py``) with their licence columns filled from
    the Commons file table: a row whose ``image_url`` is a Commons file (original or
    thumbnail) gets ``licence, licence_url, attribution, source_page``, and its source
    becomes Wikimedia Commons with the file page as ``source_url``. Other rows keep empty
    licence columns."""
    if provenance_rows.empty or files is None or len(files) == 0:
        return provenance_rows
    columns = licence_columns(provenance_rows, files)
    out = provenance_rows.copy()
    out[LICENCE_COLUMNS] = columns[LICENCE_COLUMNS]
    wikimedia = columns["source_page"].notna()
    out.loc[wikimedia, "source"] = WIKIMEDIA_SOURCE
    out.loc[wikimedia, "source_url"] = columns.loc[wikimedia, "source_page"]
    return out


def empty_files() -> pd.DataFrame:
    return pd.DataFrame(columns=COMMONS_FILE_COLUMNS)
