"""The review page's model: the queue, one item, progress, and saving a correction.

Plain Python, no HTTP: ``server.py`` turns these into JSON. Inputs are re-read only
when their files change (a signature of names, sizes and modification times), so the
page sees the pipeline's new prompts and the other reviewers' saves without a restart.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..base import jobnames
from ..base.layout import DataLayout
from ..curate.rectify import SaveOutcome, last_sensor_check, read_corrections, save_correction
from .items import attach_corrections, latest_corrections, load_base_items, reviewable

ORDERS = ("unreviewed", "confidence")
UNNAMED_REVIEWER = "(unnamed)"
# The sensor is evaluated every 30 s or so while a Dagster daemon runs; a check older
# than this means it is stopped, or no daemon is running.
SENSOR_FRESH_S = 180.0
# Where a saved correction stands (item payload ``export_state``).
NEVER_REVIEWED, WAITING_FOR_REMERGE, IN_EXPORT = "never_reviewed", "waiting_for_remerge", "in_export"


@dataclass(frozen=True)
class QueueFilter:
    """Which posters the queue holds, and in what order."""

    order: str = "unreviewed"  # "unreviewed": never reviewed first, then by confidence; "confidence": lowest first
    genre: str | None = None  # case-insensitive, one of the movie's genres
    partition: str | None = None  # an id-range partition key

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")


class ReviewState:
    """Thread-safe access to the review items of one data directory."""

    def __init__(self, data_dir: Path):
        self.layout = DataLayout(Path(data_dir))
        self._lock = threading.Lock()
        self._base_signature: tuple | None = None
        self._base: pd.DataFrame | None = None
        self._corrections_signature: tuple | None = None
        self._corrections: list = []
        self._items: pd.DataFrame | None = None
        self._export_is_current = False

    @property
    def images_root(self) -> Path:
        return self.layout.images_dir

    # ------------------------------------------------------------------ loading

    def items(self) -> pd.DataFrame:
        """The review items with the store's latest corrections (``REVIEW_COLUMNS``)."""
        with self._lock:
            changed = False
            base_signature = self._signature_of_inputs()
            if base_signature != self._base_signature:
                self._base = load_base_items(self.layout)
                self._base_signature = base_signature
                changed = True
            store_signature = _store_signature(self.layout.rectifications_dir)
            if store_signature != self._corrections_signature:
                self._corrections = read_corrections(self.layout.rectifications_dir)[0]
                self._corrections_signature = store_signature
                changed = True
            if changed or self._items is None:
                self._items = attach_corrections(reviewable(self._base), latest_corrections(self._corrections))
            return self._items  # shared: callers must not modify it

    def _signature_of_inputs(self) -> tuple:
        images = self.layout.poster_images_root
        partitions = _folder_signature(images) if images.is_dir() else ()
        prompts = _file_signature(self.layout.poster_prompts_file)
        export = _file_signature(self.layout.export.posters_csv)
        # The export holds the merged prompts once it was written after them.
        self._export_is_current = bool(prompts and export and export[1] >= prompts[1])
        # A partition folder's mtime changes when a poster or its manifest is written.
        return (
            _file_signature(self.layout.movies_file),
            prompts,
            export,
            _folder_signature(self.layout.vision_prompts_dir),
            partitions,
        )

    # ------------------------------------------------------------------ queries

    def queue(self, flt: QueueFilter) -> list[int]:
        """Ids in review order."""
        frame = _filtered(self.items(), flt)
        if frame.empty:
            return []
        # Missing confidence sorts after every real one: nothing says it is weak.
        confidence = frame["confidence"].fillna(math.inf)
        keys = pd.DataFrame({"id": frame["id"], "confidence": confidence})
        if flt.order == "unreviewed":
            keys["reviewed"] = frame["correction_text"].notna().astype(int)
            keys = keys.sort_values(["reviewed", "confidence", "id"], kind="stable")
        else:
            keys = keys.sort_values(["confidence", "id"], kind="stable")
        return [int(i) for i in keys["id"]]

    def item(self, movie_id: int) -> dict | None:
        frame = self.items()
        match = frame[frame["id"] == movie_id]
        if match.empty:
            return None
        return item_payload(match.iloc[0].to_dict(), self.images_root, self._export_is_current)

    def remerge_status(self, now: datetime | None = None) -> dict:
        """Whether saves reach the export by themselves: the re-merge sensor looked at
        the folder recently, or it did not (then the page shows the command to run)."""
        checked = last_sensor_check(self.layout.rectifications_sensor_file)
        age = ((now or datetime.now(timezone.utc)) - checked).total_seconds() if checked else None
        return {
            "sensor_checked_at": checked.isoformat() if checked else None,
            "sensor_running": age is not None and age <= SENSOR_FRESH_S,
            "command": jobnames.execute_command(jobnames.EXPORT),
            "folder": str(self.layout.rectifications_dir),
        }

    def facets(self) -> dict:
        """The genres and partitions a filter can choose from."""
        frame = self.items()
        genres = sorted({g for gs in frame["genres"] for g in gs}, key=str.lower)
        partitions = sorted({p for p in frame["partition"] if isinstance(p, str)})
        return {"genres": genres, "partitions": partitions, "orders": list(ORDERS)}

    def progress(self, flt: QueueFilter | None = None) -> dict:
        """Reviewed and left, overall and per reviewer (within the filter, if one is given).

        A poster counts as reviewed once it has any correction; a reviewer's count is
        the posters whose latest correction is theirs, and ``saves`` every correction
        they wrote for these posters.
        """
        frame = self.items() if flt is None else _filtered(self.items(), flt)
        with self._lock:
            base = self._base
        left_out = base[~base["verified_image"]]
        left_out = left_out if flt is None else _filtered(left_out, flt)
        ids = set(int(i) for i in frame["id"])
        reviewed = int(frame["correction_text"].notna().sum())
        latest_by: dict[str, int] = {}
        for name in frame.loc[frame["correction_text"].notna(), "correction_reviewer"]:
            key = name if isinstance(name, str) and name else UNNAMED_REVIEWER
            latest_by[key] = latest_by.get(key, 0) + 1
        saves: dict[str, int] = {}
        with self._lock:
            corrections = list(self._corrections)
        for c in corrections:
            if c.id in ids:
                key = c.reviewer or UNNAMED_REVIEWER
                saves[key] = saves.get(key, 0) + 1
        reviewers = [
            {"reviewer": name, "posters": latest_by.get(name, 0), "saves": saves.get(name, 0)}
            for name in sorted(set(latest_by) | set(saves), key=str.lower)
        ]
        return {
            "total": len(ids),
            "reviewed": reviewed,
            "left": len(ids) - reviewed,
            "reviewers": reviewers,
            "without_verified_image": len(left_out),
        }

    # ------------------------------------------------------------------ writing

    def save(
        self,
        movie_id: int,
        text: str,
        reviewer: str | None,
        expected_previous: str | None,
        replaced_text: str | None,
        note: str | None = None,
    ) -> SaveOutcome:
        """Write a correction through the rectification store (atomic, conflict-checked)."""
        if self.item(movie_id) is None:
            raise KeyError(movie_id)
        return save_correction(
            self.layout.rectifications_dir, movie_id, text, reviewer, replaced_text, expected_previous, note=note
        )


def item_payload(row: dict, images_root: Path, export_is_current: bool = False) -> dict:
    """One item as JSON-ready plain values. ``version`` is what the page must send back
    as ``expected_previous``; ``editable_text`` is what the editor starts with;
    ``export_state`` says whether the latest correction is in the export yet."""
    correction = _none(row.get("correction_text"))
    merged = _none(row.get("merged_vision_text"))
    if correction is None:
        export_state = NEVER_REVIEWED
    elif export_is_current and merged is not None and " ".join(merged.split()) == correction:
        export_state = IN_EXPORT
    else:
        export_state = WAITING_FOR_REMERGE
    caption = _none(row.get("blip2_caption"))
    image_path = _none(row.get("image_path"))
    image_url = None
    if image_path:
        relative = Path(image_path).resolve().relative_to(images_root.resolve())
        image_url = "/images/" + relative.as_posix()
    when = _none(row.get("correction_at"))
    return {
        "id": int(row["id"]),
        "title": row.get("title") or "",
        "genres": list(row.get("genres") or []),
        "partition": _none(row.get("partition")),
        "image_url": image_url,
        "blip2_caption": caption,
        "confidence": _none(row.get("confidence")),
        "synopsis_prompt": _none(row.get("synopsis_prompt")),
        "current_text": _none(row.get("current_text")),
        "correction": None
        if correction is None
        else {
            "text": correction,
            "reviewer": _none(row.get("correction_reviewer")),
            "created_at": when.isoformat() if when is not None else None,
        },
        "version": correction,
        "editable_text": correction if correction is not None else (caption or ""),
        "export_state": export_state,
    }


def _filtered(frame: pd.DataFrame, flt: QueueFilter) -> pd.DataFrame:
    if flt.partition:
        frame = frame[frame["partition"] == flt.partition]
    if flt.genre:
        wanted = flt.genre.casefold()
        frame = frame[[any(g.casefold() == wanted for g in gs) for gs in frame["genres"]]]
    return frame


def _none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    return value


def _file_signature(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def _store_signature(folder: Path) -> tuple:
    """The rectification folder's mtime and file names, without a stat per file.

    Every save adds a file (a new name, a new folder mtime); a file edited in place
    is picked up at the next change of the folder.
    """
    try:
        stat = folder.stat()
        names = tuple(sorted(os.listdir(folder)))
    except OSError:
        return ()
    return (stat.st_mtime_ns, names)


def _folder_signature(folder: Path) -> tuple:
    """Names, sizes and mtimes of the folder's entries: cheap next to parsing them."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return ()
    signature = []
    for entry in entries:
        try:
            stat = entry.stat()
        except OSError:
            continue
        signature.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(signature))
