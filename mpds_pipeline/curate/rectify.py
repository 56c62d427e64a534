"""Human corrections ("manual rectification") of the BLIP-2 vision-perceptive captions.

Reviewers drop CSV or Label Studio JSON files into one folder, which is never edited,
so the folder is the audit trail. This module reads them, decides which correction wins
per poster, and writes the review page's saves without letting two reviewers overwrite
each other. File formats and rules: docs/captions-review.md.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import io
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..base.files import atomic_open, write_atomic
from ..base.folders import RectificationsFolder
from ..imdb.ids import parse_title_id

AUDIT_COLUMNS = ["id", "text", "replaced_text", "reviewer", "note", "created_at", "source", "row"]
REJECTED_COLUMNS = ["source", "row", "id", "reason"]
LABEL_STUDIO_ID_KEYS = ("id", "imdb_id", "movie_id", "title_id")
_IMAGE_ID_RE = re.compile(r"(?:^|[/\\_-])(\d+)\.[A-Za-z]{3,4}$")


@dataclass
class Correction:
    """One correction as read from a file; ``row`` is 1-based (CSV: data row; JSON: task)."""

    id: int
    text: str
    reviewer: str | None
    note: str | None
    created_at: datetime  # timezone-aware UTC
    source: str  # file name inside the folder
    row: int

    def sort_key(self) -> tuple:
        return (self.created_at, self.source, self.row)


@dataclass
class Rejection:
    source: str
    row: int | None  # None: the whole file
    id: str | None  # the raw id as written, when there was one
    reason: str


@dataclass
class RectificationResult:
    """What the merge of the rectification folder found.

    ``corrections`` maps id -> the winning text; ``audit`` keeps every accepted
    correction in time order with the text it replaced (the previous correction, or
    the caption from ``current_texts`` for the first one).
    """

    corrections: dict[int, str]
    accepted: pd.DataFrame  # the winning correction per id, AUDIT_COLUMNS
    audit: pd.DataFrame  # every accepted correction, AUDIT_COLUMNS
    rejected: pd.DataFrame  # REJECTED_COLUMNS
    files: list[str] = field(default_factory=list)

    @property
    def rejection_reasons(self) -> dict[str, int]:
        if self.rejected.empty:
            return {}
        return {str(k): int(v) for k, v in self.rejected["reason"].value_counts().items()}

    def metadata(self) -> dict:
        """Counts for an asset's metadata."""
        return {
            "files": len(self.files),
            "corrections": len(self.audit),
            "ids_corrected": len(self.corrections),
            "rejected": len(self.rejected),
            "rejection_reasons": self.rejection_reasons,
        }


@dataclass
class SaveOutcome:
    """Result of ``save_correction``: either saved (``path`` set) or a conflict."""

    saved: bool
    conflict: bool
    path: Path | None
    # On a conflict: the latest correction that someone else saved, and who.
    current_text: str | None = None
    current_reviewer: str | None = None
    created_at: datetime | None = None


# --------------------------------------------------------------------------- reading


def read_corrections(folder: Path) -> tuple[list[Correction], list[Rejection], list[str]]:
    """Parse every correction file in ``folder`` (no id validation yet)."""
    folder = Path(folder)
    corrections: list[Correction] = []
    rejections: list[Rejection] = []
    files: list[str] = []
    if not folder.is_dir():
        return corrections, rejections, files
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".json"):
            continue
        files.append(path.name)
        stat = path.stat()
        found, bad = _read_file(str(path), stat.st_mtime_ns, stat.st_size)
        corrections.extend(found)
        rejections.extend(bad)
    return corrections, rejections, files


@functools.lru_cache(maxsize=100_000)
def _read_file(path: str, mtime_ns: int, size: int) -> tuple[tuple[Correction, ...], tuple[Rejection, ...]]:
    """One file's corrections, cached by (path, mtime, size): files are written once and
    replaced atomically, so a save re-reads only what changed, not the whole folder."""
    file_time = datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc)
    reader = _read_csv if path.lower().endswith(".csv") else _read_label_studio
    try:
        found, bad = reader(Path(path), file_time)
    except Exception as exc:  # a broken file must not hide the others
        return (), (Rejection(Path(path).name, None, None, f"malformed file: {exc}"),)
    return tuple(found), tuple(bad)


def load_rectifications(
    folder: Path,
    known_ids: set[int] | None = None,
    current_texts: dict[int, str] | None = None,
) -> RectificationResult:
    """Read the folder, reject corrections for ids not in ``known_ids`` (None: accept
    any id), and pick the latest correction per id."""
    corrections, rejections, files = read_corrections(folder)
    current_texts = current_texts or {}
    kept: list[Correction] = []
    for item in corrections:
        if known_ids is not None and item.id not in known_ids:
            rejections.append(Rejection(item.source, item.row, str(item.id), "unknown id"))
        else:
            kept.append(item)
    kept.sort(key=Correction.sort_key)

    audit_rows = []
    latest: dict[int, str] = {}
    for item in kept:
        replaced = latest.get(item.id, current_texts.get(item.id))
        audit_rows.append(
            {
                "id": item.id,
                "text": item.text,
                "replaced_text": replaced,
                "reviewer": item.reviewer,
                "note": item.note,
                "created_at": item.created_at,
                "source": item.source,
                "row": item.row,
            }
        )
        latest[item.id] = item.text
    audit = pd.DataFrame(audit_rows, columns=AUDIT_COLUMNS)
    if not audit.empty:
        audit["created_at"] = pd.to_datetime(audit["created_at"], utc=True)
    accepted = audit.drop_duplicates("id", keep="last").reset_index(drop=True)
    rejected = pd.DataFrame([vars(r) for r in rejections], columns=REJECTED_COLUMNS)
    rejected["row"] = rejected["row"].astype("Int64")  # None (whole file) stays missing
    return RectificationResult(corrections=latest, accepted=accepted, audit=audit, rejected=rejected, files=files)


def latest_correction(folder: Path, movie_id: int) -> Correction | None:
    """The correction that currently wins for ``movie_id``, or None."""
    corrections, _, _ = read_corrections(folder)
    mine = [c for c in corrections if c.id == movie_id]
    return max(mine, key=Correction.sort_key) if mine else None


def _read_csv(path: Path, file_time: datetime) -> tuple[list[Correction], list[Rejection]]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in (reader.fieldnames or [])}
    missing = {"id", "text"} - columns
    if missing:
        raise ValueError(f"missing column(s) {', '.join(sorted(missing))}")
    found: list[Correction] = []
    bad: list[Rejection] = []
    for row_number, raw in enumerate(reader, start=1):
        if None in raw:  # more cells than header columns: the row is shifted
            bad.append(Rejection(path.name, row_number, None, "malformed row: too many cells"))
            continue
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        result = _make_correction(
            raw_id=row.get("id"),
            text=row.get("text"),
            reviewer=row.get("reviewer"),
            note=row.get("note"),
            when=row.get("created_at"),
            file_time=file_time,
            source=path.name,
            row=row_number,
        )
        (found if isinstance(result, Correction) else bad).append(result)
    return found, bad


def _read_label_studio(path: Path, file_time: datetime) -> tuple[list[Correction], list[Rejection]]:
    tasks = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(tasks, dict):  # a single task exported on its own
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ValueError("expected a list of Label Studio tasks")
    found: list[Correction] = []
    bad: list[Rejection] = []
    for task_number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            bad.append(Rejection(path.name, task_number, None, "malformed row: task without data"))
            continue
        raw_id = _label_studio_movie_id(task["data"])
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        texts_found = 0
        for annotation in annotations:
            if annotation.get("was_cancelled"):
                continue
            text = _textarea_text(annotation.get("result") or [])
            if text is None:
                continue
            texts_found += 1
            result = _make_correction(
                raw_id=raw_id,
                text=text,
                reviewer=_reviewer_name(annotation.get("completed_by")),
                note=None,
                when=annotation.get("updated_at") or annotation.get("created_at"),
                file_time=file_time,
                source=path.name,
                row=task_number,
            )
            (found if isinstance(result, Correction) else bad).append(result)
        if not texts_found:
            bad.append(Rejection(path.name, task_number, raw_id, "no textarea annotation"))
    return found, bad


def _label_studio_movie_id(data: dict) -> str | None:
    for key in LABEL_STUDIO_ID_KEYS:
        if data.get(key) not in (None, ""):
            return str(data[key])
    image = str(data.get("image") or "")
    if parse_title_id(image) is not None:
        return image
    match = _IMAGE_ID_RE.search(image.split("?")[0])
    return match.group(1) if match else None


def _textarea_text(results: list) -> str | None:
    for item in results:
        if isinstance(item, dict) and item.get("type") == "textarea":
            lines = (item.get("value") or {}).get("text") or []
            if isinstance(lines, str):
                lines = [lines]
            return " ".join(str(line) for line in lines)
    return None


def _reviewer_name(completed_by) -> str | None:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("username") or completed_by.get("id"))
    return None if completed_by is None else str(completed_by)


def _make_correction(*, raw_id, text, reviewer, note, when, file_time, source, row) -> Correction | Rejection:
    movie_id = _parse_id(raw_id)
    if movie_id is None:
        reason = "missing id" if not raw_id else "bad id"
        return Rejection(source, row, raw_id or None, reason)
    text = " ".join((text or "").split())
    if not text:
        return Rejection(source, row, str(raw_id), "empty text")
    created_at = file_time
    if when:
        try:
            created_at = _parse_time(when)
        except ValueError:
            return Rejection(source, row, str(raw_id), f"bad created_at {when!r}")
    return Correction(movie_id, text, reviewer or None, note or None, created_at, source, row)


def _parse_id(raw) -> int | None:
    if raw is None:
        return None
    raw = str(raw).strip()
    if raw.isdigit():
        value = int(raw)
        return value if value > 0 else None
    return parse_title_id(raw)


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# --------------------------------------------------------------------------- writing


def save_correction(
    folder: Path,
    movie_id: int,
    text: str,
    reviewer: str | None,
    replaced_text: str | None,
    expected_previous: str | None,
    note: str | None = None,
) -> SaveOutcome:
    """Save one reviewer's correction, unless someone else corrected the id meanwhile.

    ``expected_previous`` is the latest *correction* the reviewer saw for this id
    (None when they saw only BLIP-2's caption). If the folder's latest correction
    differs, nothing is written and the outcome carries the other text. ``replaced_text``
    (what was on screen) is stored with the row for the record.
    """
    if not isinstance(movie_id, int) or movie_id < 1:
        raise ValueError(f"IMDb ids are positive integers, got {movie_id!r}")
    clean = " ".join((text or "").split())
    if not clean:
        raise ValueError("a correction needs a non-empty text")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder):
        current = latest_correction(folder, movie_id)
        if (current.text if current else None) != _normalise(expected_previous):
            return SaveOutcome(
                saved=False,
                conflict=True,
                path=None,
                current_text=current.text if current else None,
                current_reviewer=current.reviewer if current else None,
                created_at=current.created_at if current else None,
            )
        now = datetime.now(timezone.utc)
        if current and current.created_at >= now:  # keep "latest wins" true despite clock skew
            now = current.created_at + pd.Timedelta(microseconds=1).to_pytimedelta()
        stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
        path = RectificationsFolder(folder).review_save(stamp, movie_id, secrets.token_hex(3))
        _write_atomically(
            path,
            [
                {
                    "id": movie_id,
                    "text": clean,
                    "reviewer": reviewer or "",
                    "note": note or "",
                    "created_at": now.isoformat(),
                    "replaced_text": replaced_text or "",
                }
            ],
        )
        return SaveOutcome(saved=True, conflict=False, path=path, created_at=now)


def _normalise(text: str | None) -> str | None:
    if text is None:
        return None
    return " ".join(text.split()) or None


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    with open(RectificationsFolder(folder).lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: Path, rows: list[dict]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------- the re-merge sensor's heartbeat


def record_sensor_check(path: Path, folder: Path, when: datetime | None = None) -> None:
    """Note that the re-merge sensor has just looked at ``folder``, so the review page can
    tell a reviewer whether a save will be merged by itself (atomic write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = (when or datetime.now(timezone.utc)).isoformat()
    write_atomic(path, json.dumps({"checked_at": stamp, "folder": str(folder)}))


def last_sensor_check(path: Path) -> datetime | None:
    """When the re-merge sensor last looked (None: never, or the file is unreadable)."""
    try:
        return datetime.fromisoformat(json.loads(Path(path).read_text(encoding="utf-8"))["checked_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
