"""provenance.parquet from what the stages left on disk: archive captures when the crawl
recorded them, "live" with the outcome's URL when it did not (outcomes written before)."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mpds_pipeline.base.folders import ImageFolder
from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.manifest import MANIFEST_SCHEMA
from mpds_pipeline.curate.provenance import PROVENANCE_SCHEMA, build_provenance, write_provenance
from mpds_pipeline_tests.image_samples import saved_noise_jpeg

PARTITION = "tt0000001-tt0000050"


def _outcome(title_id: int, **archive) -> dict:
    return {
        "kind": "title",
        "id": title_id,
        "url": f"https://www.imdb.com/title/tt{title_id:07d}/",
        "status": "ok",
        "http_status": 200,
        "redirect_id": None,
        "error": None,
        "attempts": 1,
        "fetched_at": "2026-12-07T01:00:00+00:00",
        **archive,
    }


def _setup(tmp_path, outcomes: list[dict]) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    pages = layout.pages("title", PARTITION)
    pages.path.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(outcomes), pages.outcomes)
    images = layout.poster_images_dir(PARTITION)
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for title_id in (1, 2):
        row = saved_noise_jpeg(
            rng, images, title_id, 64, 96, f"https://m.media-amazon.com/images/M/{title_id}._V1_.jpg"
        )
        row["sha256"] = hashlib.sha256((images / row["file_name"]).read_bytes()).hexdigest()
        rows.append({**row, "verified": "structure", "decoded_by": None})
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), ImageFolder(images).manifest)
    export = layout.export
    export.posters_dir.mkdir(parents=True)
    for title_id in (1, 2):
        shutil.copy(images / f"{title_id}.jpg", export.poster(title_id))
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64())}), export.parquet("meta"))
    return layout


def _build(layout, movies):
    return build_provenance(
        layout.export_dir,
        movies,
        title_pages_root=layout.pages_root("title"),
        person_pages_root=layout.pages_root("person"),
        omdb_root=layout.omdb_root,
        poster_dirs=[layout.poster_images_dir(PARTITION)],
        actor_images_dir=None,
    )


MOVIES = pd.DataFrame(
    {"id": [1, 2], "era": ["next", "next"], "field_sources": [{"poster_url": "page"}, {"poster_url": "page"}]}
)


def test_archive_captures_are_traced_to_the_warc_record(tmp_path):
    capture = {
        "source": "common_crawl",
        "source_url": "https://www.imdb.com/title/tt0000001/",
        "capture_crawl": "CC-MAIN-2024-10",
        "capture_timestamp": "20240301120000",
        "capture_filename": "crawl-data/CC-MAIN-2024-10/segments/1/warc/x.warc.gz",
        "capture_offset": 1234,
        "capture_length": 5678,
        "capture_digest": "sha1:ABC",
    }
    live = {**{k: None for k in capture}, "source": "live", "source_url": "https://www.imdb.com/title/tt0000002/"}
    layout = _setup(tmp_path, [_outcome(1, **capture), _outcome(2, **live)])
    provenance = _build(layout, MOVIES)
    rows = provenance.rows.set_index(["kind", "id"])
    page = rows.loc[("title_page", 1)]
    assert page["source"] == "common_crawl" and page["capture_crawl"] == "CC-MAIN-2024-10"
    assert int(page["capture_offset"]) == 1234 and int(page["capture_length"]) == 5678
    assert rows.loc[("title_page", 2), "source"] == "live"
    poster = rows.loc[("poster", 1)]
    assert poster["source"] == "common_crawl" and poster["image_url"].endswith("/1._V1_.jpg")
    assert poster["sha256"] == hashlib.sha256(layout.export.poster(1).read_bytes()).hexdigest()
    assert provenance.counts() == {"common_crawl": 2, "live": 2} and not provenance.untraced_images
    write_provenance(provenance, layout.export.provenance)
    assert pq.read_schema(layout.export.provenance).equals(PROVENANCE_SCHEMA)


def test_outcomes_without_page_sources_read_as_live(tmp_path):
    layout = _setup(tmp_path, [_outcome(1), _outcome(2)])
    provenance = _build(layout, MOVIES)
    assert set(provenance.rows["source"]) == {"live"}
    pages = provenance.rows[provenance.rows["kind"] == "title_page"]
    assert list(pages["source_url"]) == [
        "https://www.imdb.com/title/tt0000001/",
        "https://www.imdb.com/title/tt0000002/",
    ]


def test_an_exported_image_no_manifest_describes_is_reported(tmp_path):
    layout = _setup(tmp_path, [_outcome(1), _outcome(2)])
    shutil.copy(layout.export.poster(1), layout.export.poster(3))
    provenance = _build(layout, MOVIES)
    assert provenance.untraced_images == ["posters/3.jpg"]
    assert provenance.metadata()["provenance_untraced_images"] == 1


def test_released_rows_name_the_release_file(tmp_path):
    layout = _setup(tmp_path, [])
    movies = pd.DataFrame(
        {
            "id": [1, 2],
            "era": ["release", "release"],
            "field_sources": [{"poster_url": "release"}] * 2,
            "source_file": ["/releases/meta.csv"] * 2,
        }
    )
    provenance = _build(layout, movies)
    assert set(provenance.rows["source"]) == {"release"}
    assert set(provenance.rows["source_url"]) == {"/releases/meta.csv"}
    assert len(provenance.rows[provenance.rows["kind"] == "poster"]) == 2
