"""How the review page scales: posters in the queue and files in the rectification store.

    .venv/bin/python benchmarks/bench_review.py --posters 20000 --saves 2000

Builds a synthetic data dir in a temp folder (captions, prompts, empty poster files),
then times the loader, a cold and a warm item lookup, and one save plus the reload
the next request triggers (every save adds a file, so the store is re-read).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.imdb.partitions import id_ranges
from mpds_pipeline.review import QueueFilter, ReviewState, load_review_items


def build(root: Path, posters: int, saves: int) -> DataLayout:
    layout = DataLayout(root)
    ids = list(range(1, posters + 1))
    layout.movies_file.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "title": [f"Movie {i}" for i in ids],
                "genres": [["Drama", "Comedy"][i % 2 : i % 2 + 1] for i in ids],
                "synopsis": [f"Plot {i}." for i in ids],
            }
        ),
        layout.movies_file,
    )
    layout.poster_prompts_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "id": ids,
                "synopsis_prompt": [f"Movie {i}. Plot {i}." for i in ids],
                "text": [f"caption {i}. Movie {i}." for i in ids],
            }
        ),
        layout.poster_prompts_file,
    )
    for part in id_ranges("title", 1, posters):
        part_ids = list(part.ids())
        path = layout.vision_prompts_file(part.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.table(
                {
                    "id": part_ids,
                    "caption": [f"caption {i}" for i in part_ids],
                    "confidence": [-(i % 97) / 10 for i in part_ids],
                    "error": pa.nulls(len(part_ids), pa.string()),
                }
            ),
            path,
        )
        folder = layout.poster_images_dir(part.key)
        folder.mkdir(parents=True, exist_ok=True)
        for i in part_ids:
            (folder / f"{i}.jpg").touch()
    # One file per save, as the page writes them; written directly because
    # save_correction re-reads the whole folder per call (quadratic for a big build).
    layout.rectifications_dir.mkdir(parents=True)
    for i in range(1, saves + 1):
        (layout.rectifications_dir / f"review-20260101T000000{i:06d}Z-{i}-bench.csv").write_text(
            "id,text,reviewer,note,created_at,replaced_text\n"
            f"{i},fixed {i},bench,,2026-01-01T00:00:00+00:00,caption {i}\n"
        )
    return layout


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:<44} {time.perf_counter() - start:8.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posters", type=int, default=20000)
    parser.add_argument("--saves", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        layout = timed(
            f"build {args.posters} posters, {args.saves} saves", lambda: build(Path(tmp), args.posters, args.saves)
        )
        timed("load_review_items", lambda: load_review_items(layout))
        state = ReviewState(layout.root)
        timed("first request (cold cache)", lambda: state.item(5))
        timed("item lookup (warm)", lambda: state.item(6))
        timed("queue, lowest confidence first", lambda: state.queue(QueueFilter()))
        timed("progress", lambda: state.progress())
        timed(
            "one save (store re-read under lock)",
            lambda: state.save(args.saves + 1, "new", "bench", expected_previous=None, replaced_text=None),
        )
        timed("next item lookup (store re-read)", lambda: state.item(7))


if __name__ == "__main__":
    main()
