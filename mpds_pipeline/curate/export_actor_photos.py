"""The actor face crops in the release: ``actor_photos.csv``, its Parquet and the crops.

Written after the main export, for the actors of its ``actors.csv``: one row per
512x512 face crop saying where the photo came from, its caption and the crop box in the
photo's pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ..base.folders import ExportFolder
from ..base.progress import Progress, ProgressLog
from .export_images import sync_images
from .export_tables import jsonify, write_csv, write_parquet
from .filters import as_text

ACTOR_PHOTOS_COLUMNS = [
    "actor_id",
    "rank",
    "source",
    "photo_url",
    "caption",
    "crop_box",
    "file_name",
    "sha256",
    "bytes",
    "width",
    "height",
]
ACTOR_PHOTOS_SCHEMA = pa.schema(
    [
        ("actor_id", pa.int64()),
        ("rank", pa.int64()),
        ("source", pa.string()),
        ("photo_url", pa.string()),
        ("caption", pa.string()),
        ("crop_box", pa.list_(pa.int64())),
        ("file_name", pa.string()),
        ("sha256", pa.string()),
        ("bytes", pa.int64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
    ]
)


def write_actor_photos_export(photos: pd.DataFrame, export_dir: Path, log: ProgressLog | None = None) -> dict[str, Any]:
    """``actor_photos.csv`` and ``.parquet`` (one row per 512x512 face crop: where the
    photo came from, its caption, the crop box in the photo's pixels) and the crops under
    ``actor_photos/``, for the actors of ``actors.csv``. Returns counts for metadata."""
    export = ExportFolder(Path(export_dir))
    export.actor_photos_dir.mkdir(parents=True, exist_ok=True)
    listed = set(pd.read_csv(export.actors_csv)["id"].astype(int)) if export.actors_csv.exists() else set()
    rows, files = [], {}
    for photo in photos.to_dict("records") if not photos.empty else []:
        source = Path(photo["path"])
        if int(photo["actor_id"]) not in listed or not source.is_file():
            continue
        file_name = export.actor_photo_file_name(int(photo["actor_id"]), int(photo["rank"]))
        files[Path(file_name).name] = source
        rows.append(
            {
                "actor_id": int(photo["actor_id"]),
                "rank": int(photo["rank"]),
                "source": photo["source"],
                "photo_url": photo["url"],
                "caption": as_text(photo.get("caption")),
                "crop_box": [int(v) for v in photo["crop_box"]],
                "file_name": file_name,
                "sha256": photo["sha256"],
                "bytes": int(photo["bytes"]),
                "width": int(photo["width"]),
                "height": int(photo["height"]),
            }
        )
    sync_images(export.actor_photos_dir, files, Progress("export: actor face crops", len(files), log, unit="images"))
    write_csv(export.actor_photos_csv, ACTOR_PHOTOS_COLUMNS, (jsonify(r) for r in rows))
    write_parquet(
        export.actor_photos_parquet, ACTOR_PHOTOS_SCHEMA, {c: [r[c] for r in rows] for c in ACTOR_PHOTOS_COLUMNS}
    )
    return {"actor_photo_rows": len(rows), "actors_with_photos": len({r["actor_id"] for r in rows})}
