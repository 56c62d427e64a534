"""Small helpers that turn core results into Dagster metadata."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from dagster import MetadataValue


def markdown_table(frame: pd.DataFrame, limit: int = 10, cell_width: int = 60) -> MetadataValue:
    """A preview of the first rows as a markdown table (cells cut at ``cell_width``, pipes escaped)."""
    if frame.empty:
        return MetadataValue.md("_no rows_")
    head = frame.head(limit)
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    for row in head.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value, cell_width) for value in row) + " |")
    return MetadataValue.md("\n".join(lines))


def counts_table(counts: dict, key: str = "reason", value: str = "count") -> MetadataValue:
    return markdown_table(pd.DataFrame({key: list(counts), value: list(counts.values())}), limit=100)


def image_md(path: Path, alt: str = "plot") -> MetadataValue:
    """Embed a PNG in markdown metadata so the UI shows it inline."""
    import base64

    data = base64.b64encode(Path(path).read_bytes()).decode()
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def _cell(value, width: int = 60) -> str:
    if isinstance(value, dict):
        value = ", ".join(value)
    elif isinstance(value, (list, tuple, np.ndarray)):
        value = ", ".join(map(str, list(value)))
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"
