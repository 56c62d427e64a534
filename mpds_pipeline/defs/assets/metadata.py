"""Turn core results into Dagster metadata that the UI shows where people look.

Dagster's asset page renders only some metadata inline, so previews and counts become
tables and a plot becomes short markdown whose image comes by URL. What renders inline
and why: docs/pipeline.md.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import mimetypes
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from ...base.files import write_atomic
from ...base.folders import ImageFolder

# The UI shows a markdown (or JSON) entry inline only when it is shorter than this
# (MetadataEntry.tsx, `expandSmallValues && mdStr.length < 1000`).
INLINE_MARKDOWN_CHARS = 1000
IMAGES_NAMESPACE = "mpds_images"
CELL_CHARS = 80
BAR_WIDTH = 20  # characters of the longest bar in a text bar chart
# The metadata value column is about 470 px wide on a 1500 px wide window: wider images are
# cut off, so the copy shown inline is scaled down to this width (the files keep theirs).
INLINE_IMAGE_WIDTH = 460


# --- tables ---------------------------------------------------------------------------


def preview_table(frame: pd.DataFrame, limit: int = 10, cell_width: int = CELL_CHARS) -> MetadataValue:
    """The first ``limit`` rows as a table shown inline: cells cut at ``cell_width``
    characters, lists joined, missing values (None, NaN, NaT) empty."""
    head = frame.head(limit)
    columns = [TableColumn(str(name), _column_type(head[name])) for name in head.columns]
    records = [
        TableRecord({str(name): _cell(value, cell_width) for name, value in zip(head.columns, row)})
        for row in head.itertuples(index=False)
    ]
    return MetadataValue.table(records, schema=TableSchema(columns=columns))


def counts_table(counts: dict, key: str = "reason", value: str = "count") -> MetadataValue:
    """A name -> count mapping as a two-column table, largest first."""
    ordered = sorted(counts.items(), key=lambda item: -item[1] if isinstance(item[1], (int, float)) else 0)
    return preview_table(
        pd.DataFrame({key: [k for k, _ in ordered], value: [v for _, v in ordered]}), limit=len(ordered)
    )


def bar_chart(values: dict, key: str, value: str = "count", total: int | None = None) -> MetadataValue:
    """A bar chart drawn in text, as a table: name, value, (share of ``total``,) and a bar
    of block characters scaled to the largest value. It shows inline in the UI."""
    ordered = sorted(values.items(), key=lambda item: -item[1])
    largest = max((v for _, v in ordered), default=0)
    rows = {key: [name for name, _ in ordered], value: [v for _, v in ordered]}
    if total:
        rows["share"] = [f"{100.0 * v / total:.1f}%" for _, v in ordered]
    rows["bar"] = [text_bar(v / largest if largest else 0.0) for _, v in ordered]
    return preview_table(pd.DataFrame(rows), limit=len(ordered))


def text_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """0.5 -> 15 full blocks; eighths of a block for the remainder."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else "")


def tabulate(metadata: dict) -> dict:
    """Metadata with JSON-like values made tables (a dict: name/value rows; a list of
    dicts: one row each; a list: one column), which the UI shows inline."""
    return {name: _as_table(value) if _json_like(value) else value for name, value in metadata.items()}


def _json_like(value) -> bool:
    # Dagster's metadata values are tuples too: leave them as they are.
    return isinstance(value, (dict, list, tuple)) and not isinstance(value, MetadataValue)


def _as_table(value) -> MetadataValue:
    if isinstance(value, dict):
        return preview_table(
            pd.DataFrame({"name": [str(k) for k in value], "value": [_cell(v) for v in value.values()]}),
            limit=len(value),
        )
    items = list(value)
    if items and all(isinstance(item, dict) for item in items):
        return preview_table(pd.DataFrame(items), limit=len(items))
    return preview_table(pd.DataFrame({"value": [_cell(item) for item in items]}), limit=len(items))


def _column_type(series: pd.Series) -> str:
    if series.isna().all():  # nothing says what it holds (an all-missing column reads as float)
        return "string"
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "string"


def _shown_float(value: float) -> float | None:
    """Four significant digits below 1000 (0.0634030103 -> 0.0634), one decimal above;
    None for NaN and infinities."""
    if not math.isfinite(value):
        return None
    return round(value, 1) if abs(value) >= 1000 else float(f"{value:.4g}")


def _shown_time(value: datetime) -> str:
    """2026-11-28 00:26:58 UTC (no microseconds)."""
    zone = value.tzname() if value.tzinfo is not None else None
    return value.strftime("%Y-%m-%d %H:%M:%S") + (f" {zone}" if zone else "")


def _cell(value, width: int = CELL_CHARS):
    """A plain value for a table cell: None for anything missing."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _shown_float(float(value))
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime):  # pandas Timestamps too
        return _shown_time(value)
    if isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    elif isinstance(value, (list, tuple, np.ndarray)):
        value = ", ".join(map(str, list(value)))
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- markdown -------------------------------------------------------------------------


def md_escape(value) -> str:
    """Text that markdown shows as typed: HTML, table pipes and emphasis escaped,
    missing values (None, NaN) empty."""
    cell = _cell(value, width=10**9)
    if cell is None:
        return ""
    text = str(cell)
    for char in "\\`*_[]|#":
        text = text.replace(char, "\\" + char)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- images ---------------------------------------------------------------------------


def plot_image(context, path: Path, alt: str) -> MetadataValue:
    """An image shown inline in the asset's metadata (see the module docstring), scaled
    down to ``INLINE_IMAGE_WIDTH`` when wider."""
    from PIL import Image

    path = Path(path)
    with Image.open(path) as image:
        if image.width > INLINE_IMAGE_WIDTH:
            image.thumbnail((INLINE_IMAGE_WIDTH, image.height), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, "PNG")
            data, suffix = buffer.getvalue(), ".png"
        else:
            data, suffix = path.read_bytes(), path.suffix
    return MetadataValue.md(f"![{md_escape(alt)}]({image_url(context, data, suffix)})")


def thumbnail_table(context, rows: list[dict], image_dir: Path, size: tuple[int, int] = (96, 144)) -> MetadataValue:
    """Posters as thumbnails beside their captions (``rows``: id, caption), as a markdown
    table cut to the rows that keep it short enough to show inline."""
    from PIL import Image

    lines = ["| poster | id | caption |", "|---|---|---|"]
    for row in rows:
        path = ImageFolder(Path(image_dir)).image(int(row["id"]))
        thumb = ""
        if path.exists():
            with Image.open(path) as image:
                image.thumbnail(size)
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, "JPEG", quality=70)
            thumb = f"![{row['id']}]({image_url(context, buffer.getvalue(), '.jpg')})"
        lines.append(f"| {thumb} | {row['id']} | {md_escape(_cell(row.get('caption'), width=60))} |")
    # Embedded (data:) images never fit inline; with short URLs, drop rows until it does.
    while len(lines) > 3 and "](data:" not in lines[2] and len("\n".join(lines)) >= INLINE_MARKDOWN_CHARS:
        lines.pop()
    return MetadataValue.md("\n".join(lines))


def image_url(context, data: bytes, suffix: str) -> str:
    """Where the UI loads the image from: the webserver's URL of a copy in the
    instance's local compute-log storage, else the image itself as a data: URL."""
    extension = suffix.lstrip(".").lower()
    stored = stored_image_url(context, data, extension)
    if stored is not None:
        return stored
    mime = mimetypes.guess_type(f"x.{extension}")[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def stored_image_url(context, data: bytes, extension: str) -> str | None:
    """Store ``data`` in the instance's local compute-log storage, named by its content,
    and return the URL the webserver serves it at; None without local storage."""
    from ..dagster_internals import local_compute_log_manager

    manager = local_compute_log_manager(getattr(context, "instance", None))
    if manager is None or extension not in ("png", "jpg", "jpeg"):
        return None
    digest = hashlib.sha256(data).hexdigest()[:24]
    target = Path(manager.get_captured_local_path([IMAGES_NAMESPACE, digest], extension))
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    return f"/logs/{IMAGES_NAMESPACE}/{digest}/{extension}"
