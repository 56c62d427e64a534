"""Export at scale: ``write_export`` over synthetic rows, to show it grows linearly.

Builds, once per size and outside the timing, a curated movies table (title, 3 genres,
3 actors, synopsis), one poster folder per 10,000-id partition with its download
manifest and a tiny JPEG per movie, an actors table (one per five movies) with one or
two verified photos each, and integrated poster texts with their extra columns; then
times ``write_export`` (the meta/posters/actors CSV and Parquet, metadata.jsonl and the
image links) into a fresh export folder, and again over the export it just wrote (the
rerun: every link is already there). No network, no model.

    .venv/bin/python benchmarks/bench_export.py --sizes 10000 100000

Prints a table (seconds per size, the ratio to the smallest size) and the load average.
Linear growth means ratio ~= size ratio (10x for 10k -> 100k).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from mpds_pipeline.base.folders import image_file_name
from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.manifest import MANIFEST_SCHEMA, merge_into_manifest
from mpds_pipeline.imdb.ids import person_url
from mpds_pipeline.imdb.partitions import id_ranges

PARTITION_SIZE = 10_000
GENRES = ["Drama", "Comedy", "Action", "Horror", "Romance", "Thriller"]


def tiny_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 12), (120, 30, 60)).save(out, "JPEG")
    return out.getvalue()


def manifest_rows(folder: Path, ids: list[int], variants: dict[int, int], data: bytes) -> pd.DataFrame:
    rows = []
    for item_id in ids:
        for variant in range(1, variants.get(item_id, 1) + 1):
            name = image_file_name(item_id, variant)
            (folder / name).write_bytes(data)
            rows.append(
                {
                    "id": item_id,
                    "variant": variant,
                    "file_name": name,
                    "url": f"https://example.invalid/{name}",
                    "bytes": len(data),
                    "width": 8,
                    "height": 12,
                    "format": "JPEG",
                    "sha256": None,
                    "status": "ok",
                    "reason": None,
                    "verified": "structure",
                    "decoded_by": None,
                }
            )
    return pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)


def build_inputs(root: Path, size: int) -> dict:
    """The tables and folders of ``size`` curated movies (cached per size under ``root``)."""
    layout = DataLayout(root / f"data-{size}")
    data = tiny_jpeg()
    n_actors = max(1, size // 5)
    movies = pd.DataFrame(
        {
            "id": range(1, size + 1),
            "title": [f"Movie {i}" for i in range(1, size + 1)],
            "genres": [[GENRES[i % 6], GENRES[(i + 1) % 6], GENRES[(i + 2) % 6]] for i in range(size)],
            "actors": [
                {f"Actor {(i * 3 + k) % n_actors + 1}": person_url((i * 3 + k) % n_actors + 1) for k in range(3)}
                for i in range(size)
            ],
            "poster_url": [f"https://m.media-amazon.com/images/M/{i}._V1_.jpg" for i in range(1, size + 1)],
            "synopsis": [f"A story number {i} about people and places." for i in range(1, size + 1)],
        }
    )
    actors = pd.DataFrame(
        {
            "id": range(1, n_actors + 1),
            "name": [f"Actor {i}" for i in range(1, n_actors + 1)],
            "image_url": [f"https://m.media-amazon.com/images/M/a{i}._V1_.jpg" for i in range(1, n_actors + 1)],
        }
    )
    marker = layout.root / "inputs-complete"
    if not marker.exists():
        shutil.rmtree(layout.root, ignore_errors=True)
        for key in id_ranges("title", 1, size, PARTITION_SIZE):
            folder = layout.poster_images_dir(key.key)
            folder.mkdir(parents=True)
            merge_into_manifest(folder, manifest_rows(folder, list(range(key.first, key.last + 1)), {}, data))
        layout.actor_images_dir.mkdir(parents=True)
        merge_into_manifest(
            layout.actor_images_dir,
            manifest_rows(layout.actor_images_dir, list(actors["id"]), {a: 2 for a in actors["id"] if a % 2}, data),
        )
        marker.write_text("ok")
    texts = {int(i): f"a movie poster of Movie {i}. Drama. Starring Actor {i}." for i in movies["id"]}
    extra = pd.DataFrame(
        {
            "id": movies["id"],
            "poster_caption": "Movie",
            "synopsis_prompt": movies["synopsis"],
            "vision_prompt": "a movie poster of a face",
        }
    )
    return {"layout": layout, "movies": movies, "actors": actors, "texts": texts, "extra": extra}


def time_export(inputs: dict, export_dir: Path) -> tuple[float, dict]:
    layout = inputs["layout"]
    started = time.perf_counter()
    result = write_export(
        inputs["movies"],
        None,
        sorted(p for p in layout.poster_images_root.iterdir() if p.is_dir()),
        inputs["actors"],
        layout.actor_images_dir,
        export_dir,
        texts=inputs["texts"],
        extra_poster_columns=inputs["extra"],
    )
    return time.perf_counter() - started, result.counts


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "mpds-bench-export"))
    args = parser.parse_args()
    root = Path(args.workdir)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average before: {load()}")
    rows = []
    for size in args.sizes:
        started = time.perf_counter()
        inputs = build_inputs(root, size)
        print(f"{size:,} rows: inputs ready in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
        export_dir = root / f"export-{size}"
        shutil.rmtree(export_dir, ignore_errors=True)
        first, counts = time_export(inputs, export_dir)
        rerun, _ = time_export(inputs, export_dir)
        rows.append((size, first, rerun, counts))
        print(f"{size:,} rows: write_export {first:.2f} s, rerun {rerun:.2f} s, load {load()}; {counts}", flush=True)
    base_size, base_first, base_rerun, _ = rows[0]
    print("\n| rows | write_export s | per 1k rows ms | x smallest | rerun s | x smallest |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, first, rerun, _ in rows:
        print(
            f"| {size:,} | {first:.2f} | {1e6 * first / size:.1f} "
            f"| {first / base_first:.1f}x (rows {size / base_size:.0f}x) "
            f"| {rerun:.2f} | {rerun / base_rerun:.1f}x |"
        )
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
