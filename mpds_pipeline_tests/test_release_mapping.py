"""Released tables other than MPDS's meta.csv: a column mapping, CSV or Parquet."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpds_pipeline.curate.rehydrate import ReleaseFormatError, load_release

MAPPING = {"id": "imdb_id", "poster_url": "poster", "title": "name", "text": "caption", "actors": "cast"}


def _rows():
    return [
        {
            "imdb_id": "tt0000001",
            "poster": "https://m.media-amazon.com/images/M/one._V1_.jpg",
            "name": "One",
            "caption": "a poster of one",
            "cast": ["https://www.imdb.com/name/nm0000012", "nm0000044"],
        },
        {
            "imdb_id": "https://www.imdb.com/title/tt0000002/",
            "poster": "",
            "name": "Two",
            "caption": "",
            "cast": [["Elena Keller", "https://www.imdb.com/name/nm0000012"], ["Just A Name", ""]],
        },
        {"imdb_id": "not an id", "poster": "ftp://x", "name": "Bad", "caption": "", "cast": []},
    ]


def _check(result, file_name):
    assert result.rows_read == 3 and len(result.movies) == 2
    one, two = result.movies.to_dict("records")
    assert (one["id"], one["title"], one["poster_url"]) == (
        1,
        "One",
        "https://m.media-amazon.com/images/M/one._V1_.jpg",
    )
    assert one["actors"] == {
        "nm0000012": "https://www.imdb.com/name/nm0000012",
        "nm0000044": "https://www.imdb.com/name/nm0000044",
    }
    assert two["id"] == 2 and pd.isna(two["poster_url"])
    assert two["actors"] == {"Elena Keller": "https://www.imdb.com/name/nm0000012"}
    assert result.actors_without_ids == 1  # "Just A Name": a cast links persons by id
    assert result.texts == {1: "a poster of one"}
    assert one["era"] == "release" and one["field_sources"]["poster_url"] == "release"
    assert one["source_file"].endswith(file_name)
    (error,) = result.errors
    assert error.row == 3 and set(error.columns) == {"imdb_id", "poster"}


def test_a_mapped_csv(tmp_path):
    import json

    frame = pd.DataFrame(_rows())
    frame["cast"] = frame["cast"].map(json.dumps)
    frame.to_csv(tmp_path / "release.csv", index=False)
    _check(load_release(tmp_path / "release.csv", columns=MAPPING), "release.csv")


def test_a_mapped_parquet_with_typed_columns(tmp_path):
    rows = _rows()
    rows[1]["cast"] = [
        {"key": "Elena Keller", "value": "https://www.imdb.com/name/nm0000012"},
        {"key": "Just A Name", "value": None},
    ]
    table = pa.table(
        {
            "imdb_id": [r["imdb_id"] for r in rows],
            "poster": [r["poster"] for r in rows],
            "name": [r["name"] for r in rows],
            "caption": [r["caption"] for r in rows],
            # a list of person URLs, a map, an empty list: each its own shape, as JSON text
            "cast": [str(r["cast"]).replace("'", '"').replace("None", "null") for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "release.parquet")
    _check(load_release(tmp_path / "release.parquet", columns=MAPPING), "release.parquet")


def test_a_parquet_with_a_map_column_and_integer_ids(tmp_path):
    table = pa.table(
        {
            "tconst": pa.array([1, 2], pa.int64()),
            "url": ["https://m.media-amazon.com/images/M/a._V1_.jpg", "https://m.media-amazon.com/images/M/b._V1_.jpg"],
            "genre_list": pa.array([["Drama", "Crime"], None], pa.list_(pa.string())),
            "cast": pa.array([[("A", "https://www.imdb.com/name/nm0000001")], []], pa.map_(pa.string(), pa.string())),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    result = load_release(
        tmp_path / "t.parquet", columns={"id": "tconst", "poster_url": "url", "genres": "genre_list", "actors": "cast"}
    )
    assert not result.errors
    assert list(result.movies["id"]) == [1, 2]
    assert result.movies.loc[0, "genres"] == ["Drama", "Crime"] and result.movies.loc[1, "genres"] == []
    assert result.movies.loc[0, "actors"] == {"A": "https://www.imdb.com/name/nm0000001"}


def test_a_mapping_naming_a_missing_column_or_an_unknown_key_is_a_clear_error(tmp_path):
    pd.DataFrame({"imdb_id": ["1"]}).to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(ReleaseFormatError, match="lacks required column"):
        load_release(tmp_path / "r.csv", columns={"id": "imdb_id", "poster_url": "poster"})
    with pytest.raises(ReleaseFormatError, match="unknown release column mapping key"):
        load_release(tmp_path / "r.csv", columns={"id": "imdb_id", "image": "poster"})
    with pytest.raises(ReleaseFormatError, match="not a readable Parquet"):
        (tmp_path / "bad.parquet").write_bytes(b"not parquet")
        load_release(tmp_path / "bad.parquet", columns={"id": "imdb_id"})
