"""Records to Parquet and back, and filling gaps from the dataset index."""

from __future__ import annotations

from mpds_pipeline.imdb.record_store import read_records, write_records
from mpds_pipeline.imdb.records import PersonRecord, TitleRecord
from mpds_pipeline.sources.field_order import field_order, merge_title_records


def test_title_records_round_trip_keeps_types_and_cast_order(tmp_path):
    records = [
        TitleRecord(
            id=133093,
            title="The Matrix",
            original_title="The Matrix",
            title_type="movie",
            year=1999,
            genres=["Action", "Sci-Fi"],
            actors={
                "Keanu Reeves": "https://www.imdb.com/name/nm0000206",
                "Laurence Fishburne": "https://www.imdb.com/name/nm0000401",
            },
            poster_url="https://m.media-amazon.com/images/M/x._V1_.jpg",
            certificate="R",
            era="next",
        ),
        TitleRecord(id=7, title=None, original_title=None, title_type=None, year=None),
    ]
    write_records(records, "title", tmp_path / "records" / "tt0000001-tt0200000.parquet")
    frame = read_records(tmp_path / "records", "title").set_index("id")
    assert list(frame.loc[133093, "actors"]) == ["Keanu Reeves", "Laurence Fishburne"]
    assert list(frame.loc[133093, "genres"]) == ["Action", "Sci-Fi"]
    assert frame.loc[133093, "year"] == 1999
    assert frame.loc[7, "actors"] == {}


def test_person_records_of_several_partitions_read_as_one_table(tmp_path):
    folder = tmp_path / "records"
    write_records([PersonRecord(1, "A", None, ["actor"], True)], "person", folder / "nm0000001-nm0000010.parquet")
    write_records([PersonRecord(11, "B", "u", ["director"], False)], "person", folder / "nm0000011-nm0000020.parquet")
    frame = read_records(folder, "person")
    assert sorted(frame["id"]) == [1, 11]
    assert list(frame.loc[frame["id"] == 11, "professions"].iloc[0]) == ["director"]


def test_the_index_fills_what_the_page_lacks_and_wins_where_the_order_says():
    page_has = TitleRecord(id=1, title="x", original_title="x", title_type="tvMovie", year=2000, genres=["Drama"])
    page_lacks = TitleRecord(id=2, title="y", original_title="y", title_type=None, year=2001, genres=[])
    index = {
        1: {"title_type": "movie", "genres": ["Comedy"]},
        2: {"title_type": "movie", "genres": ["Comedy", "Crime"]},
    }
    page_first = field_order({"title_type": "page,index", "genres": "page,index"})
    records, _ = merge_title_records([page_has, page_lacks], {}, index, page_first)
    assert [(r.title_type, r.genres) for r in records] == [("tvMovie", ["Drama"]), ("movie", ["Comedy", "Crime"])]
    assert records[0].field_sources["title_type"] == "page" and records[1].field_sources["genres"] == "index"
    records, _ = merge_title_records([page_has, page_lacks], {}, index)  # the default: the index first
    assert [(r.title_type, r.genres) for r in records] == [("movie", ["Comedy"]), ("movie", ["Comedy", "Crime"])]
    assert records[0].field_sources["title"] == "page"  # the index had no title for it
