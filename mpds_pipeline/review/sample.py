"""A small data directory to try the review page on (and to test it with).

``python -m mpds_pipeline.review.sample DIR`` writes it; then
``python -m mpds_pipeline.review --data-dir DIR`` serves it.
Some strings are hostile on purpose (HTML in a title and a synopsis) so the page's
escaping can be seen.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ..base.folders import ImageFolder, image_file_name
from ..base.layout import DataLayout
from ..curate.manifest import MANIFEST_SCHEMA

HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_SYNOPSIS = 'A plot with <img src=x onerror="alert(2)"> inside & "quotes".'
FIRST_PARTITION = "tt0000001-tt0010000"
SECOND_PARTITION = "tt0010001-tt0020000"

# id, title, genres, partition, caption, confidence (None: no usable caption), a verified
# image? (Nosferatu's download was rejected: it is not reviewable.)
SAMPLE_MOVIES = [
    (12, "The Arrival of a Train", ["Documentary", "Short"], FIRST_PARTITION, "a train at a station", -2.5, True),
    (25, HOSTILE_TITLE, ["Drama"], FIRST_PARTITION, "a man in a hat <b>bold</b>", -0.4, True),
    (417, "A Trip to the Moon", ["Adventure", "Fantasy"], FIRST_PARTITION, "a rocket in the moon's eye", -1.2, True),
    (10050, "The Kid", ["Comedy", "Drama"], SECOND_PARTITION, "a man and a child", -3.1, True),
    (10120, "Nosferatu", ["Fantasy", "Horror"], SECOND_PARTITION, None, None, False),
]


def write_sample_data(root: Path) -> DataLayout:
    """Write movies, captions, poster prompts and poster JPEGs under ``root``."""
    layout = DataLayout(Path(root))
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)

    movies = pa.table(
        {
            "id": pa.array([m[0] for m in SAMPLE_MOVIES], pa.int64()),
            "title": [m[1] for m in SAMPLE_MOVIES],
            "genres": pa.array([m[2] for m in SAMPLE_MOVIES], pa.list_(pa.string())),
            "actors": pa.array(
                [[(f"Actor {m[0]}", f"https://www.imdb.com/name/nm{m[0]:07d}/")] for m in SAMPLE_MOVIES],
                pa.map_(pa.string(), pa.string()),
            ),
            "synopsis": [HOSTILE_SYNOPSIS if m[1] == HOSTILE_TITLE else f"The story of {m[1]}." for m in SAMPLE_MOVIES],
            "poster_url": [f"https://m.media-amazon.com/images/M/{m[0]}._V1_.jpg" for m in SAMPLE_MOVIES],
        }
    )
    layout.movies_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(movies, layout.movies_file)

    for partition in (FIRST_PARTITION, SECOND_PARTITION):
        rows = [m for m in SAMPLE_MOVIES if m[3] == partition]
        captions = pa.table(
            {
                "id": pa.array([m[0] for m in rows], pa.int64()),
                "caption": pa.array([m[4] for m in rows], pa.string()),
                "confidence": pa.array([m[5] for m in rows], pa.float64()),
                "model": ["tiny-blip2"] * len(rows),
                "settings": ["{}"] * len(rows),
                "created_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
                "error": pa.array([None if m[4] else "image unreadable" for m in rows], pa.string()),
            }
        )
        path = layout.vision_prompts_file(partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(captions, path)

    prompts = pa.table(
        {
            "id": pa.array([m[0] for m in SAMPLE_MOVIES], pa.int64()),
            "synopsis_prompt": [f"{m[1]}. Genres: {', '.join(m[2])}. Starring: Actor {m[0]}." for m in SAMPLE_MOVIES],
            "vision_prompt": [m[4] or "" for m in SAMPLE_MOVIES],
            "vision_source": ["blip2" if m[4] else "none" for m in SAMPLE_MOVIES],
            "text": [f"{m[4] or ''}. {m[1]}." for m in SAMPLE_MOVIES],
            "poster_caption": [f"{m[1]}, starring Actor {m[0]}" for m in SAMPLE_MOVIES],
        }
    )
    pq.write_table(prompts, layout.poster_prompts_file)

    manifests: dict[str, list[dict]] = {}
    for index, movie in enumerate(SAMPLE_MOVIES):
        folder = layout.poster_images_dir(movie[3])
        folder.mkdir(parents=True, exist_ok=True)
        row = {
            "id": movie[0],
            "variant": 1,
            "file_name": image_file_name(movie[0]),
            "url": f"https://m.media-amazon.com/images/M/{movie[0]}._V1_.jpg",
            "bytes": None,
            "width": None,
            "height": None,
            "format": None,
            "sha256": None,
            "status": "too_small",
            "reason": "412 bytes < 5120",
        }
        if movie[6]:
            path = folder / row["file_name"]
            colour = (40 * index % 256, 90, 200 - 30 * index)
            Image.new("RGB", (60, 90), colour).save(path, quality=85)
            row.update(bytes=path.stat().st_size, width=60, height=90, format="JPEG", status="ok", reason=None)
        manifests.setdefault(movie[3], []).append(row)
    for partition, rows in manifests.items():
        pq.write_table(
            pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA),
            ImageFolder(layout.poster_images_dir(partition)).manifest,
        )
    return layout


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "review-sample")
    write_sample_data(target)
    print(f"sample review data written to {target.resolve()}")
