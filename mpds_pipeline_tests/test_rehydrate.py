"""Rehydration from a released MPDS meta.csv / posters.csv, with no crawl."""

from __future__ import annotations

import csv

import pytest

from mpds_pipeline.curate.filters import select_movies
from mpds_pipeline.curate.rehydrate import META_COLUMNS, ReleaseFormatError, load_release

GOOD_JSON = {
    "id": "133093",
    "movie-url": "https://www.imdb.com/title/tt0133093",
    "title": "The Matrix",
    "genres": '["Action", "Sci-Fi"]',
    "actors": '{"Keanu Reeves": "https://www.imdb.com/name/nm0000206"}',
    "poster-url": "https://m.media-amazon.com/images/M/MV5BN2._V1_.jpg",
    "synopsis": "A hacker learns the truth.",
}
# The paper's own files hold Python literals with single quotes.
GOOD_LITERAL = {
    **GOOD_JSON,
    "id": "1",
    "movie-url": "https://www.imdb.com/title/tt0000001",
    "title": "Carmencita",
    "genres": "['Documentary', 'Short']",
    "actors": "{'Carmencita': 'https://www.imdb.com/name/nm1588970'}",
}


def write_csv(path, rows, columns=META_COLUMNS):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_good_rows_become_title_records(tmp_path):
    meta = write_csv(tmp_path / "meta.csv", [GOOD_JSON, GOOD_LITERAL])
    result = load_release(meta)
    assert result.errors == []
    movies = result.movies
    assert movies["id"].tolist() == [133093, 1]
    first = movies.iloc[0]
    assert first["genres"] == ["Action", "Sci-Fi"]
    assert first["actors"] == {"Keanu Reeves": "https://www.imdb.com/name/nm0000206"}
    assert first["poster_url"] == GOOD_JSON["poster-url"]
    assert first["original_title"] == "The Matrix"
    assert movies.iloc[1]["genres"] == ["Documentary", "Short"]
    assert set(movies["era"]) == {"release"} and not movies["is_adult"].any()
    # The same filters apply: this is the shape select_movies expects.
    assert select_movies(movies).kept == 2


def test_bad_rows_are_reported_with_row_numbers_and_columns(tmp_path):
    rows = [
        GOOD_JSON,
        {**GOOD_LITERAL, "genres": '["Drama", '},  # row 2: bad JSON
        {**GOOD_LITERAL, "id": ""},  # row 3: missing id
        {**GOOD_LITERAL, "id": "tt12x"},  # row 4: non-integer id
        {**GOOD_LITERAL, "poster-url": "not a url"},  # row 5: bad poster URL
        {
            **GOOD_LITERAL,
            "movie-url": "https://example.com/title/tt0000001",
            "actors": '{"X": "https://www.imdb.com/title/tt1"}',
        },  # row 6: two bad URLs
        GOOD_LITERAL,  # row 7: good
        {**GOOD_LITERAL, "id": "5", "movie-url": "https://www.imdb.com/title/tt0000002"},  # row 8: id/url mismatch
        GOOD_LITERAL,  # row 9: duplicate of row 7
    ]
    result = load_release(write_csv(tmp_path / "meta.csv", rows))
    assert result.movies["id"].tolist() == [133093, 1]
    found = {(e.row, e.columns) for e in result.errors}
    assert found == {
        (2, ("genres",)),
        (3, ("id",)),
        (4, ("id",)),
        (5, ("poster-url",)),
        (6, ("movie-url", "actors")),
        (8, ("movie-url",)),
        (9, ("id",)),
    }
    assert all(e.file == "meta.csv" for e in result.errors)
    assert "meta.csv row 2 [genres]" in str(result.errors[0])
    assert result.metadata()["bad_rows"] == 7


def test_missing_columns_raise_a_clear_error(tmp_path):
    meta = write_csv(tmp_path / "meta.csv", [{"id": "1", "title": "x"}], columns=("id", "title"))
    with pytest.raises(ReleaseFormatError) as raised:
        load_release(meta)
    message = str(raised.value)
    for column in ("movie-url", "genres", "actors", "poster-url", "synopsis"):
        assert column in message


def test_posters_csv_gives_texts_and_reports_bad_rows(tmp_path):
    meta = write_csv(tmp_path / "meta.csv", [GOOD_JSON])
    posters = write_csv(
        tmp_path / "posters.csv",
        [{"id": "133093", "text": "A poster of The Matrix"}, {"id": "abc", "text": "x"}],
        columns=("id", "text"),
    )
    result = load_release(meta, posters)
    assert result.texts == {133093: "A poster of The Matrix"}
    assert [(e.file, e.row, e.columns) for e in result.errors] == [("posters.csv", 2, ("id",))]

    with pytest.raises(ReleaseFormatError, match="text"):
        load_release(meta, write_csv(tmp_path / "bad.csv", [{"id": "1"}], columns=("id",)))
