"""Choosing among sources: one merge, field by field, in a configured order."""

from __future__ import annotations

import pytest

from mpds_pipeline.imdb.records import TitleRecord
from mpds_pipeline.sources.field_order import (
    DEFAULT_FIELD_ORDER,
    MERGED_FIELDS,
    FieldOrderError,
    field_order,
    merge_title,
    merge_title_records,
)

PAGE = {
    "title": "Page Title",
    "year": 1999,
    "genres": [],
    "actors": {"A": "https://www.imdb.com/name/nm0000001"},
    "poster_url": "https://m.media-amazon.com/images/M/page._V1_.jpg",
    "synopsis": None,
    "certificate": "",
    "is_adult": False,
}
OMDB = {
    "title": "OMDb Title",
    "year": 1998,
    "genres": ["Drama"],
    "actors": {},
    "poster_url": "https://m.media-amazon.com/images/M/omdb._V1_.jpg",
    "synopsis": "OMDb plot.",
    "certificate": "R",
    "is_adult": False,
}
INDEX = {"title": "Index Title", "year": 2000, "genres": [], "actors": {}, "is_adult": None}


def test_each_field_comes_from_the_first_source_in_its_order_with_a_usable_value():
    merged = merge_title({"page": PAGE, "omdb": OMDB, "index": INDEX})
    assert merged.values["title"] == "Index Title" and merged.field_sources["title"] == "index"
    assert merged.values["year"] == 2000
    # Empty lists, empty strings and None fall through to the next source.
    assert (merged.values["genres"], merged.field_sources["genres"]) == (["Drama"], "omdb")
    assert merged.field_sources["actors"] == "page"
    assert merged.field_sources["poster_url"] == "page" and merged.values["synopsis"] == "OMDb plot."
    assert (merged.values["certificate"], merged.field_sources["certificate"]) == ("R", "omdb")
    assert "original_title" not in merged.field_sources and merged.values["original_title"] is None


def test_an_order_puts_another_source_first_or_leaves_one_out():
    order = field_order("poster_url=omdb,page; synopsis=page")
    merged = merge_title({"page": PAGE, "omdb": OMDB}, order)
    assert merged.field_sources["poster_url"] == "omdb"
    assert merged.values["synopsis"] is None and "synopsis" not in merged.field_sources  # OMDb not allowed
    assert order["title"] == DEFAULT_FIELD_ORDER["title"]  # fields left out keep the default


def test_adult_if_any_source_says_so():
    merged = merge_title({"page": PAGE, "omdb": {**OMDB, "is_adult": True}, "index": INDEX})
    assert merged.values["is_adult"] is True and merged.field_sources["is_adult"] == "omdb"
    assert merge_title({"page": PAGE}).values["is_adult"] is False


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("poster=page", "unknown field 'poster'"),
        ("poster_url=page,tmdb", "unknown source(s) 'tmdb'"),
        ("poster_url=page,page", "named twice"),
        ("poster_url", "not FIELD=SOURCE"),
    ],
)
def test_a_bad_order_is_a_clear_error(text, complaint):
    with pytest.raises(FieldOrderError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        field_order(text)


def test_records_exist_for_pages_and_omdb_answers_not_for_the_index_alone():
    page = TitleRecord(id=1, title="p", original_title="p", title_type="movie", year=2000, era="next")
    omdb_only = {**OMDB, "id": 2}
    records, counts = merge_title_records([page], {2: omdb_only}, {1: INDEX, 3: INDEX})
    assert [r.id for r in records] == [1, 2]
    assert records[0].era == "next" and records[1].era == "omdb"
    assert records[1].field_sources["poster_url"] == "omdb"
    assert set(records[1].field_sources) <= set(MERGED_FIELDS)
    assert {"field": "title", "source": "index", "records": 1} in counts.table()


def test_the_index_gives_title_fields_and_the_cast_from_principals(tmp_path):
    from mpds_pipeline.imdb.dataset_index import build_index
    from mpds_pipeline.sample_server.content import sample_title
    from mpds_pipeline.sample_server.datasets import write_sample_datasets
    from mpds_pipeline.sources.field_order import index_fields

    write_sample_datasets(tmp_path / "files", range(1, 30), range(1, 200), 0)
    build_index(tmp_path / "files", tmp_path / "index")
    fields = index_fields(tmp_path / "index", [1, 2, 7])
    assert 7 not in fields  # no such title (a 404 in the sample)
    truth = sample_title(1)
    assert (fields[1]["title"], fields[1]["year"], fields[1]["genres"]) == (
        truth["title"],
        truth["year"],
        truth["genres"],
    )
    assert list(fields[1]["actors"].items()) == [
        (name, f"https://www.imdb.com/name/nm{pid:07d}") for pid, name in truth["cast"]
    ]
    assert index_fields(tmp_path / "no-index", [1]) == {}
