"""Metadata the UI shows inline: tables (missing values empty, text kept as typed),
escaped markdown, text bar charts, images stored where the webserver
serves them. (test_webui.py checks the same in Chromium against a real webserver.)"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from dagster import DagsterInstance, MetadataValue
from PIL import Image

from mpds_pipeline.defs.assets.metadata import (
    INLINE_IMAGE_WIDTH,
    INLINE_MARKDOWN_CHARS,
    bar_chart,
    counts_table,
    md_escape,
    plot_image,
    preview_table,
    tabulate,
    text_bar,
    thumbnail_table,
)

HOSTILE = "<img src=x onerror=alert(1)> a man | a hat *bold*"


def records(value) -> list[dict]:
    return [record.data for record in value.value.records]


def test_preview_table_keeps_text_and_empties_missing_values():
    frame = pd.DataFrame(
        {
            "id": [1, 2],
            "text": [HOSTILE, "x" * 200],
            "replaced_text": [float("nan"), None],
            "genres": [np.array(["Drama", "Comedy"]), []],
            "confidence": [-0.56789, math.inf],
            "created_at": [pd.Timestamp("2026-11-01 00:00:00.123", tz="UTC"), pd.NaT],
        }
    )
    table = preview_table(frame)
    rows = records(table)
    assert rows[0]["text"] == HOSTILE  # a table cell is plain text in the UI: nothing to escape
    assert rows[0]["replaced_text"] is None and rows[1]["replaced_text"] is None
    assert rows[0]["genres"] == "Drama, Comedy" and rows[1]["genres"] == ""
    assert rows[1]["confidence"] is None and rows[1]["created_at"] is None
    assert rows[0]["confidence"] == -0.5679  # four significant digits
    assert rows[0]["created_at"] == "2026-11-01 00:00:00 UTC"
    assert len(rows[1]["text"]) == 80 and rows[1]["text"].endswith("…")
    types = {column.name: column.type for column in table.value.schema.columns}
    assert types == {
        "id": "int",
        "text": "string",
        "replaced_text": "string",
        "genres": "string",
        "confidence": "float",
        "created_at": "string",
    }
    json.dumps([r for r in rows], allow_nan=False)  # the UI parses each record as JSON


def test_md_escape_keeps_markdown_structure():
    assert md_escape(HOSTILE) == "&lt;img src=x onerror=alert(1)&gt; a man \\| a hat \\*bold\\*"
    assert md_escape(None) == "" and md_escape(float("nan")) == "" and md_escape(pd.NaT) == ""


def test_counts_and_text_bar_charts():
    rows = records(counts_table({"adult": 2, "no_poster": 5}))
    assert rows == [{"reason": "no_poster", "count": 5}, {"reason": "adult", "count": 2}]
    chart = records(bar_chart({"Drama": 30, "Comedy": 15, "Horror": 0}, "genre", "movies", total=60))
    assert [(r["genre"], r["share"], len(r["bar"])) for r in chart] == [
        ("Drama", "50.0%", 20),
        ("Comedy", "25.0%", 10),
        ("Horror", "0.0%", 0),
    ]
    assert text_bar(1 / 16, width=4) == "▎"
    assert "share" not in records(bar_chart({"plot": 12.5}, "field", "% of records"))[0]


def test_tabulate_turns_json_values_into_tables():
    path = MetadataValue.path("/data/index")
    converted = tabulate(
        {
            "rows": {"titles": 10, "names": 3},
            "missing": ["principals"],
            "protocol": [{"method": "a", "resize": 299}],
            "n": 4,
            "index_dir": path,
        }
    )
    assert records(converted["rows"]) == [{"name": "titles", "value": 10}, {"name": "names", "value": 3}]
    assert records(converted["missing"]) == [{"value": "principals"}]
    assert records(converted["protocol"]) == [{"method": "a", "resize": 299}]
    assert converted["n"] == 4 and converted["index_dir"] is path


def test_images_go_to_the_instance_storage_the_webserver_serves(tmp_path, dagster_home):
    png = tmp_path / "plot.png"
    Image.new("RGB", (40, 20), (200, 30, 30)).save(png)
    with DagsterInstance.get() as instance:
        entry = plot_image(SimpleNamespace(instance=instance), png, "genre distribution")
        markdown = entry.value
        assert markdown.startswith("![genre distribution](/logs/mpds_images/") and markdown.endswith("/png)")
        digest = markdown.split("/")[-2]
        stored = Path(instance.compute_log_manager.get_captured_local_path(["mpds_images", digest], "png"))
        assert stored.read_bytes() == png.read_bytes() and stored.is_relative_to(dagster_home)
        assert len(markdown) < INLINE_MARKDOWN_CHARS
        # A wide plot is scaled down to fit the metadata column.
        wide = tmp_path / "wide.png"
        Image.new("RGB", (920, 400), (30, 30, 200)).save(wide)
        digest = plot_image(SimpleNamespace(instance=instance), wide, "wide").value.split("/")[-2]
        with Image.open(instance.compute_log_manager.get_captured_local_path(["mpds_images", digest], "png")) as shown:
            assert shown.size == (INLINE_IMAGE_WIDTH, 200)

        # Caption thumbnails: short URLs, cut to fit inline.
        folder = tmp_path / "posters"
        folder.mkdir()
        rows = []
        for i in range(1, 13):
            Image.new("RGB", (60, 90), (20 * i, 90, 120)).save(folder / f"{i}.jpg")
            rows.append({"id": i, "caption": f"a poster <b>{i}</b> with a | pipe " + "and words " * 8})
        thumbnails = thumbnail_table(SimpleNamespace(instance=instance), rows, folder).value
        assert len(thumbnails) < INLINE_MARKDOWN_CHARS
        lines = thumbnails.splitlines()
        assert 3 <= len(lines) < 14 and all("](/logs/mpds_images/" in line for line in lines[2:])
        assert "&lt;b&gt;1&lt;/b&gt; with a \\| pipe" in lines[2]

    # No local compute-log storage (an ephemeral instance): the image is embedded instead.
    embedded = plot_image(SimpleNamespace(instance=DagsterInstance.ephemeral()), png, "plot").value
    assert embedded.startswith("![plot](data:image/png;base64,")
