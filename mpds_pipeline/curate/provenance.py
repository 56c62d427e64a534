"""Where every exported row came from: ``export/provenance.parquet``.

One row per exported page, poster and actor photo, naming the source that served it
(and for an archive, the capture, so the very bytes can be fetched again). It reads only
what the stages left on disk, never the network. Columns and meaning:
docs/data-layout.md and docs/sources-omdb.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..base.files import atomic_path
from ..base.folders import ExportFolder, ImageFolder, OmdbFolder, PagesFolder
from .manifest import read_manifest

TITLE_PAGE: Final = "title_page"
PERSON_PAGE: Final = "person_page"
POSTER: Final = "poster"
ACTOR_PHOTO: Final = "actor_photo"
PROVENANCE_KINDS = (TITLE_PAGE, PERSON_PAGE, POSTER, ACTOR_PHOTO)
# Sources that are not a page source of the crawl.
OMDB_SOURCE: Final = "omdb"
RELEASE_SOURCE: Final = "release"
LIVE_SOURCE: Final = "live"  # what a crawl without page provenance fetched

CAPTURE_COLUMNS = (
    "capture_crawl",
    "capture_timestamp",
    "capture_filename",
    "capture_offset",
    "capture_length",
    "capture_digest",
)
PROVENANCE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("kind", pa.string()),
        ("source", pa.string()),
        ("source_url", pa.string()),
        ("retrieved_at", pa.string()),
        ("capture_crawl", pa.string()),
        ("capture_timestamp", pa.string()),
        ("capture_filename", pa.string()),
        ("capture_offset", pa.int64()),
        ("capture_length", pa.int64()),
        ("capture_digest", pa.string()),
        ("image_url", pa.string()),
        ("sha256", pa.string()),
        ("licence", pa.string()),
        ("licence_url", pa.string()),
        ("attribution", pa.string()),
        ("source_page", pa.string()),
    ]
)
_IMAGE_NAME_RE = re.compile(r"^(\d+)(?:_(\d+))?\.jpg$")


@dataclass
class Provenance:
    rows: pd.DataFrame  # PROVENANCE_SCHEMA's columns
    untraced_images: list[str]  # exported image files no manifest row describes

    def counts(self) -> dict[str, int]:
        """Rows per source (the export's statistics), e.g. {"common_crawl": 120, "omdb": 30}."""
        return dict(sorted(Counter(self.rows["source"].fillna("unknown")).items()))

    def counts_by_kind(self) -> list[dict]:
        grouped = Counter(zip(self.rows["kind"], self.rows["source"].fillna("unknown"), strict=True))
        return [{"kind": k, "source": s, "rows": n} for (k, s), n in sorted(grouped.items())]

    def metadata(self) -> dict[str, Any]:
        return {
            "provenance_rows": len(self.rows),
            **{f"provenance_{source}": n for source, n in self.counts().items()},
            "provenance_untraced_images": len(self.untraced_images),
        }


def page_sources(pages_root: Path, ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
    """id -> where its page came from, from every partition's ``outcomes.parquet`` under
    ``pages_root`` (ok outcomes only): source, source_url, retrieved_at and the capture
    columns (None where the crawl did not record them)."""
    wanted = None if ids is None else set(ids)
    found: dict[int, dict[str, Any]] = {}
    for folder in sorted(p for p in Path(pages_root).glob("*") if p.is_dir()):
        path = PagesFolder(folder).outcomes
        if not path.is_file():
            continue
        for row in pq.read_table(path).to_pylist():
            if row.get("status") != "ok" or (wanted is not None and row["id"] not in wanted):
                continue
            if row.get("kind") not in (None, "title", "person"):
                continue  # a person's gallery page is not the page its record came from
            found[row["id"]] = {
                "source": row.get("source") or LIVE_SOURCE,
                "source_url": row.get("source_url") or row.get("url"),
                "retrieved_at": row.get("fetched_at"),
                **{c: row.get(c) for c in CAPTURE_COLUMNS},
            }
    return found


def omdb_sources(omdb_root: Path, ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
    """id -> OMDb's answer for it: source "omdb", the redacted request URL, when."""
    wanted = None if ids is None else set(ids)
    found: dict[int, dict[str, Any]] = {}
    for folder in sorted(p for p in Path(omdb_root).glob("*") if p.is_dir()):
        path = OmdbFolder(folder).records
        if not path.is_file():
            continue
        for row in pq.read_table(path, columns=["id", "request_url", "retrieved_at"]).to_pylist():
            if wanted is None or row["id"] in wanted:
                found[row["id"]] = {
                    "source": OMDB_SOURCE,
                    "source_url": row["request_url"],
                    "retrieved_at": row["retrieved_at"],
                }
    return found


def _manifest_rows(dirs: Iterable[Path]) -> dict[tuple[int, int], dict]:
    rows: dict[tuple[int, int], dict] = {}
    for folder in dirs:
        if not ImageFolder(Path(folder)).manifest.is_file():
            continue
        manifest = read_manifest(folder)
        for row in manifest[manifest["status"] == "ok"].to_dict("records"):
            rows[(int(row["id"]), int(row["variant"]))] = {**row, "_folder": Path(folder)}
    return rows


def _exported_images(folder: Path) -> list[tuple[int, int, str]]:
    """(id, variant, file name) of the images in an export folder."""
    found = []
    for path in sorted(Path(folder).glob("*.jpg")) if Path(folder).is_dir() else []:
        match = _IMAGE_NAME_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2) or 1), path.name))
    return found


def _mtime(path: Path) -> str | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return None


def _row(item_id: int, kind: str, origin: Mapping[str, Any] | None, **extra) -> dict[str, Any]:
    origin = origin or {}
    row = {name: None for name in PROVENANCE_SCHEMA.names}
    row.update({c: origin.get(c) for c in ("source", "source_url", "retrieved_at", *CAPTURE_COLUMNS)})
    row.update(id=int(item_id), kind=kind, **extra)
    return row


def build_provenance(
    export_dir: Path,
    movies: pd.DataFrame,
    *,
    title_pages_root: Path,
    person_pages_root: Path,
    omdb_root: Path,
    poster_dirs: Iterable[Path],
    actor_images_dir: Path | None,
    release_file: str | None = None,
) -> Provenance:
    """The provenance rows of the export under ``export_dir``: its meta.parquet titles,
    its posters/ and actors/ images. ``movies`` (the curated movies) says which source
    gave each title's fields (``field_sources``) and marks released rows (era "release";
    their ``source_file``, else ``release_file``, is the source URL)."""
    export = ExportFolder(Path(export_dir))
    meta_path = export.parquet("meta")
    title_ids = pq.read_table(meta_path, columns=["id"]).column("id").to_pylist() if meta_path.is_file() else []
    by_id = {int(m["id"]): m for m in movies.to_dict("records")} if len(movies) else {}
    pages = page_sources(title_pages_root, title_ids)
    omdb = omdb_sources(omdb_root, title_ids)
    rows: list[dict[str, Any]] = []
    poster_origin: dict[int, Mapping[str, Any] | None] = {}
    for title_id in title_ids:
        movie = by_id.get(title_id, {})
        field_sources = dict(movie.get("field_sources") or {})
        if movie.get("era") == "release":
            release = {"source": RELEASE_SOURCE, "source_url": movie.get("source_file") or release_file}
            rows.append(_row(title_id, TITLE_PAGE, release))
            poster_origin[title_id] = release
            continue
        used = set(field_sources.values())
        if title_id in pages and (not field_sources or "page" in used):
            rows.append(_row(title_id, TITLE_PAGE, pages[title_id]))
        if title_id in omdb and "omdb" in used:
            rows.append(_row(title_id, TITLE_PAGE, omdb[title_id]))
        poster_origin[title_id] = (
            omdb.get(title_id) if field_sources.get("poster_url") == "omdb" else pages.get(title_id)
        )

    untraced: list[str] = []
    posters = _manifest_rows(poster_dirs)
    rows += _image_rows(_exported_images(export.posters_dir), posters, POSTER, poster_origin, "posters", untraced)

    photos = _manifest_rows([actor_images_dir] if actor_images_dir is not None else [])
    exported_photos = _exported_images(export.actors_dir)
    people = page_sources(person_pages_root, {item_id for item_id, _, _ in exported_photos})
    for person_id in sorted(people):
        rows.append(_row(person_id, PERSON_PAGE, people[person_id]))
    rows += _image_rows(exported_photos, photos, ACTOR_PHOTO, people, "actors", untraced)
    frame = pd.DataFrame(rows, columns=PROVENANCE_SCHEMA.names)
    return Provenance(frame, untraced)


def _image_rows(exported, manifest: dict, kind: str, origins: dict, folder: str, untraced: list[str]) -> list[dict]:
    """One row per exported image found in its download manifest, with the source of the
    page that named it; an image no manifest describes goes to ``untraced``."""
    rows = []
    for item_id, variant, name in exported:
        found = manifest.get((item_id, variant))
        if found is None:
            untraced.append(f"{folder}/{name}")
            continue
        origin = origins.get(item_id) or {}
        rows.append(
            _row(
                item_id,
                kind,
                {"source": origin.get("source"), "source_url": origin.get("source_url")},
                retrieved_at=_mtime(found["_folder"] / found["file_name"]),
                image_url=found["url"],
                sha256=found["sha256"],
            )
        )
    return rows


def write_provenance(provenance: Provenance, path: Path) -> Path:
    """Write atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(provenance.rows, schema=PROVENANCE_SCHEMA, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path
