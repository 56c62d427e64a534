"""The release export: exact CSV schemas, JSON cells, Parquet types, imagefolder, checks."""

from __future__ import annotations

import csv
import io
import json
import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.export_checks import check_export
from mpds_pipeline.curate.images import MANIFEST_SCHEMA

KEANU = "https://www.imdb.com/name/nm0000206"


def jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (96, 144), bytes(rng.getrandbits(8) for _ in range(96 * 144 * 3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def manifest_row(item_id: int, folder, status: str = "ok", variant: int = 1) -> dict:
    name = f"{item_id}.jpg" if variant == 1 else f"{item_id}_{variant}.jpg"
    if status == "ok":
        (folder / name).write_bytes(jpeg(item_id * 10 + variant))
    return {
        "id": item_id,
        "variant": variant,
        "file_name": name,
        "url": f"https://m.media-amazon.com/{name}",
        "bytes": 1,
        "width": 96,
        "height": 144,
        "format": "JPEG",
        "sha256": "x",
        "status": status,
        "reason": None,
    }


def write_manifest(folder, rows):
    frame = pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)
    pq.write_table(
        pa.Table.from_pandas(frame, schema=MANIFEST_SCHEMA, preserve_index=False), folder / "manifest.parquet"
    )


@pytest.fixture
def exported(tmp_path):
    posters_a, posters_b, actor_dir = tmp_path / "p1", tmp_path / "p2", tmp_path / "actors"
    for folder in (posters_a, posters_b, actor_dir):
        folder.mkdir()
    write_manifest(posters_a, [manifest_row(133093, posters_a), manifest_row(2, posters_a, "invalid")])
    write_manifest(posters_b, [manifest_row(3, posters_b)])
    write_manifest(
        actor_dir,
        [
            manifest_row(206, actor_dir),
            manifest_row(206, actor_dir, variant=2),
            manifest_row(7, actor_dir, "too_small"),
        ],
    )
    movies = pd.DataFrame(
        [
            {
                "id": 133093,
                "title": "The Matrix",
                "genres": ["Action", "Sci-Fi", "Drama", "Thriller"],
                "actors": {
                    "Keanu Reeves": KEANU + "/",
                    "Carrie-Anne Moss": "https://www.imdb.com/name/nm0000005/?ref_=tt_cl",
                },
                "poster_url": "https://m.media-amazon.com/images/M/a._V1_.jpg",
                "synopsis": 'A hacker, "Neo", wakes.',
            },
            {
                "id": 2,
                "title": "Broken",
                "genres": [],
                "actors": {},
                "poster_url": "https://m.media-amazon.com/images/M/b._V1_.jpg",
                "synopsis": None,
            },
            {
                "id": 3,
                "title": "Carmencita",
                "genres": ["Documentary"],
                "actors": {},
                "poster_url": "https://m.media-amazon.com/images/M/c._V1_.jpg",
                "synopsis": "Dancing.",
            },
        ]
    )
    actors = pd.DataFrame(
        [
            {"id": 206, "name": "Keanu Reeves", "image_url": "https://m.media-amazon.com/images/M/k.jpg"},
            {"id": 7, "name": "No Photo", "image_url": "https://m.media-amazon.com/images/M/n.jpg"},
        ]
    )
    export_dir = tmp_path / "export"
    result = write_export(
        movies,
        None,
        [posters_a, posters_b],
        actors,
        actor_dir,
        export_dir,
        texts={3: "A vintage poster of a dancer"},
        extra_poster_columns=pd.DataFrame({"id": [133093], "vision_prompt": ["a man in black"]}),
    )
    return export_dir, result


def csv_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def test_csvs_have_exactly_the_release_columns_and_json_cells(exported):
    export_dir, result = exported
    header, rows = csv_rows(export_dir / "meta.csv")
    assert header == ["id", "movie-url", "title", "genres", "actors", "poster-url", "synopsis"]
    matrix = dict(zip(header, rows[0]))
    assert matrix["movie-url"] == "https://www.imdb.com/title/tt0133093"
    assert matrix["genres"] == '["Action", "Sci-Fi", "Drama"]'  # the first three
    assert json.loads(matrix["actors"]) == {
        "Keanu Reeves": KEANU,
        "Carrie-Anne Moss": "https://www.imdb.com/name/nm0000005",
    }
    assert matrix["actors"].startswith('{"Keanu Reeves": "https://www.imdb.com/name/nm0000206"')
    assert matrix["synopsis"] == 'A hacker, "Neo", wakes.'
    assert dict(zip(header, rows[1]))["genres"] == "[]"
    assert len(rows) == 3

    header, rows = csv_rows(export_dir / "posters.csv")
    assert header == ["id", "text"]
    texts = dict(rows)
    assert set(texts) == {"133093", "3"}  # the invalid poster of id 2 is left out
    assert texts["3"] == "A vintage poster of a dancer"
    assert "The Matrix" in texts["133093"] and "Keanu Reeves" in texts["133093"] and "Action" in texts["133093"]

    header, rows = csv_rows(export_dir / "actors.csv")
    assert header == ["id", "actors-url", "actors name", "image-url"]
    assert rows == [["206", KEANU, "Keanu Reeves", "https://m.media-amazon.com/images/M/k.jpg"]]
    assert result.counts["poster_rows"] == 2 and result.counts["meta_rows"] == 3


def test_images_are_in_place_and_parquet_is_typed(exported):
    export_dir, _ = exported
    assert sorted(p.name for p in (export_dir / "posters").glob("*.jpg")) == ["133093.jpg", "3.jpg"]
    assert sorted(p.name for p in (export_dir / "actors").glob("*.jpg")) == ["206.jpg", "206_2.jpg"]

    meta = pq.read_table(export_dir / "meta.parquet")
    assert meta.schema.field("genres").type == pa.list_(pa.string())
    assert meta.schema.field("actors").type == pa.map_(pa.string(), pa.string())
    assert meta.schema.field("id").type == pa.int64()
    assert meta.column("genres").to_pylist()[0] == ["Action", "Sci-Fi", "Drama"]
    assert meta.column("actors").to_pylist()[0][0] == ("Keanu Reeves", KEANU)
    posters = pq.read_table(export_dir / "posters.parquet")
    assert posters.column_names == ["id", "text", "vision_prompt"]
    assert pq.read_table(export_dir / "actors.parquet").column_names == ["id", "actors-url", "actors name", "image-url"]

    lines = [json.loads(line) for line in (export_dir / "posters" / "metadata.jsonl").read_text().splitlines()]
    assert [line["file_name"] for line in lines] == ["133093.jpg", "3.jpg"]
    assert lines[0]["vision_prompt"] == "a man in black" and lines[1]["vision_prompt"] is None


def test_imagefolder_loads_with_hugging_face_datasets(exported):
    import datasets  # a dev dependency, for this check only

    export_dir, _ = exported
    loaded = datasets.load_dataset("imagefolder", data_dir=str(export_dir / "posters"), split="train")
    assert len(loaded) == 2
    assert set(loaded["text"]) >= {"A vintage poster of a dancer"}
    assert loaded[0]["image"].size == (96, 144)


def test_checks_pass_on_a_good_export_and_catch_damage(exported):
    export_dir, _ = exported
    assert {c.name: c.passed for c in check_export(export_dir)} == {
        "export_schemas": True,
        "export_unique_ids": True,
        "export_poster_images": True,
        "export_no_adult": True,
        "export_url_formats": True,
    }
    assert not {c.name: c.passed for c in check_export(export_dir, adult_ids=[3])}["export_no_adult"]

    (export_dir / "posters" / "3.jpg").write_bytes(b"\xff\xd8" + b"x" * 6000)  # big enough, but not a JPEG
    with open(export_dir / "meta.csv", "a", encoding="utf-8") as handle:
        handle.write('3,https://www.imdb.com/title/tt3,Dup,"[""Adult""]",{},,\n')
    results = {c.name: c for c in check_export(export_dir)}
    assert not results["export_poster_images"].passed
    assert "3: does not decode" in results["export_poster_images"].details["problems"][0]
    assert not results["export_unique_ids"].passed
    assert not results["export_no_adult"].passed
    assert not results["export_url_formats"].passed
    assert results["export_schemas"].passed


def test_reexport_removes_stale_images(exported, tmp_path):
    export_dir, _ = exported
    movies = pd.DataFrame(
        [
            {
                "id": 3,
                "title": "Carmencita",
                "genres": ["Documentary"],
                "actors": {},
                "poster_url": "https://m.media-amazon.com/c.jpg",
                "synopsis": None,
            }
        ]
    )
    write_export(movies, None, [tmp_path / "p2"], pd.DataFrame(columns=["id", "name", "image_url"]), None, export_dir)
    assert [p.name for p in (export_dir / "posters").glob("*.jpg")] == ["3.jpg"]
    checks = check_export(export_dir)
    assert checks and all(c.passed for c in checks)
