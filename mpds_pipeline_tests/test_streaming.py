"""At full scale movies, actors and the export stream partition by partition (or batch
by batch): the streamed results must be exactly what the in-memory functions give."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mpds_pipeline.curate.export import write_export
from mpds_pipeline.curate.filters import (
    MovieFilterSettings,
    select_actor_files,
    select_actors,
    select_movie_files,
    select_movies,
)
from mpds_pipeline.curate.store import read_table, write_table
from mpds_pipeline.imdb.record_store import latest_partitions, read_records, write_records
from mpds_pipeline.imdb.records import PersonRecord, TitleRecord

from .test_export import manifest_row, write_manifest

CAST = {"Keanu Reeves": "https://www.imdb.com/name/nm0000206", "Nobody": "https://www.imdb.com/name/nm0000999"}


def title(item_id: int, **fields) -> TitleRecord:
    values = dict(
        id=item_id,
        title=f"Movie number {item_id}",
        original_title=f"Movie number {item_id}",
        title_type="movie",
        year=1990 + item_id % 30,
        genres=["Drama", "Comedy"],
        actors=dict(CAST),
        poster_url=f"https://m.media-amazon.com/images/M/{item_id}._V1_.jpg",
        synopsis=f"The story of {item_id}.",
        certificate="PG",
    )
    values.update(fields)
    return TitleRecord(**values)


def title_partitions(records_dir) -> None:
    write_records(
        [
            title(1),
            title(2, is_adult=True),
            title(3, certificate="R"),
            title(4, poster_url=None),
            title(5, original_title="La vie est un long fleuve tranquille"),
            title(6, genres=[], synopsis=None, actors={}),
        ],
        "title",
        records_dir / "tt0000001-tt0000010.parquet",
    )
    # Id 6 again in a later partition: the later row wins, as in read_records.
    write_records(
        [title(6, title="Six, crawled again"), title(11), title(12, certificate="United Kingdom:18")],
        "title",
        records_dir / "tt0000011-tt0000020.parquet",
    )


def test_streamed_movies_are_the_in_memory_selection(tmp_path):
    records_dir = tmp_path / "title_records"
    title_partitions(records_dir)
    settings = MovieFilterSettings()
    expected = select_movies(read_records(records_dir, "title"), settings)

    partitions = latest_partitions(records_dir, "title")
    assert partitions.rows == 8  # id 6 once
    streamed = select_movie_files(
        partitions, partitions.schema, tmp_path / "movies.parquet", tmp_path / "decisions.parquet", settings
    )
    assert streamed.metadata() == expected.metadata()
    movies = read_table(tmp_path / "movies.parquet")
    assert movies["id"].tolist() == expected.movies["id"].tolist() == [1, 6, 11]
    assert movies.loc[1, "title"] == "Six, crawled again" and movies.loc[1, "genres"].tolist() == ["Drama", "Comedy"]
    assert movies.loc[0, "actors"] == CAST  # billing order kept
    for column in ("title", "synopsis", "language", "language_confidence"):
        assert movies[column].tolist() == expected.movies[column].tolist()
    decisions = read_table(tmp_path / "decisions.parquet")
    pd.testing.assert_frame_equal(decisions, expected.decisions, check_dtype=False)
    assert streamed.preview["id"].tolist() == [1, 6, 11]


def test_streamed_actors_are_the_in_memory_selection(tmp_path):
    records_dir = tmp_path / "title_records"
    title_partitions(records_dir)
    partitions = latest_partitions(records_dir, "title")
    select_movie_files(partitions, partitions.schema, tmp_path / "movies.parquet", tmp_path / "decisions.parquet")
    persons_dir = tmp_path / "person_records"
    photo = "https://m.media-amazon.com/images/M/k.jpg"
    write_records(
        [
            PersonRecord(206, "Keanu Reeves", photo, ["actor"], True),
            PersonRecord(5, "A Writer", photo, ["writer"], False),
            PersonRecord(7, "No Photo", None, ["actress"], True),
        ],
        "person",
        persons_dir / "nm0000001-nm0000300.parquet",
    )
    write_records([PersonRecord(7, "No Photo", photo, ["actress"], True)], "person", persons_dir / "nm9.parquet")
    expected = select_actors(read_records(persons_dir, "person"), read_table(tmp_path / "movies.parquet"))

    streamed = select_actor_files(
        latest_partitions(persons_dir, "person"),
        tmp_path / "movies.parquet",
        tmp_path / "actors.parquet",
        tmp_path / "movie_actor.parquet",
        batch_rows=2,  # several batches of movies
    )
    assert streamed.metadata() == expected.metadata()
    actors = read_table(tmp_path / "actors.parquet")
    assert actors["id"].tolist() == [206, 7]  # the later partition's photo made 7 an actor
    pd.testing.assert_frame_equal(read_table(tmp_path / "movie_actor.parquet"), expected.movie_actor)
    assert [list(p) for p in actors["professions"]] == [list(p) for p in expected.actors["professions"]]


def test_an_export_from_the_movies_file_in_batches_is_the_same_release(tmp_path):
    posters = tmp_path / "posters"
    posters.mkdir()
    movie_ids = [1, 6, 11, 12, 13]
    write_manifest(posters, [manifest_row(i, posters) for i in movie_ids if i != 12])
    movies = pd.DataFrame([{k: v for k, v in vars(title(i)).items() if k != "kind"} for i in movie_ids])
    movies["actors"] = [dict(CAST), {}, dict(CAST), {}, dict(CAST)]
    write_table(movies, tmp_path / "movies.parquet")
    actors = pd.DataFrame([{"id": 206, "name": "Keanu Reeves", "image_url": "https://m.media-amazon.com/k.jpg"}])
    texts = {6: "A poster of six", 13: ""}
    extra = pd.DataFrame({"id": [13, 1, 1], "vision_prompt": ["thirteen", "one", "one again"], "score": [0.5, None, 2]})

    whole = write_export(
        movies, None, [posters], actors, None, tmp_path / "whole", texts=texts, extra_poster_columns=extra
    )
    batched = write_export(
        tmp_path / "movies.parquet",
        None,
        [posters],
        actors,
        None,
        tmp_path / "batched",
        texts=pa.table({"id": list(texts), "text": list(texts.values())}),
        extra_poster_columns=pa.table(
            {
                "id": extra["id"].tolist(),
                "vision_prompt": pa.array(extra["vision_prompt"].tolist(), pa.string()),
                "score": [0.5, None, 2.0],
            }
        ),
        batch_rows=2,
    )
    assert batched.counts == whole.counts and whole.counts["poster_rows"] == 4
    assert whole.counts["custom_texts"] == 1  # an empty text is no text: the synopsis prompt is used
    for name in ("meta.csv", "posters.csv", "actors.csv", "posters/metadata.jsonl"):
        assert (tmp_path / "batched" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    for name in ("meta", "posters", "actors"):
        assert pq.read_table(tmp_path / "batched" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "whole" / f"{name}.parquet")
        ), name
    jsonl = (tmp_path / "whole" / "posters" / "metadata.jsonl").read_text().splitlines()
    assert '"vision_prompt": "one", "score": null' in jsonl[0]  # the first row of an id wins
    assert '"vision_prompt": null, "score": null' in jsonl[1]  # no extra row for 6
    assert sorted(p.name for p in (tmp_path / "batched" / "posters").glob("*.jpg")) == [
        "1.jpg",
        "11.jpg",
        "13.jpg",
        "6.jpg",
    ]
