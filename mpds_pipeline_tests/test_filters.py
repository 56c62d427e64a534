"""Curation filters: adult, certificate blocklist, language, poster, missing fields, actors."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mpds_pipeline.curate.filters import MovieFilterSettings, as_actor_dict, as_genre_list, select_actors, select_movies
from mpds_pipeline.curate.language import decide_language
from mpds_pipeline.imdb.records import PersonRecord, TitleRecord

KEANU = {"Keanu Reeves": "https://www.imdb.com/name/nm0000206"}


def title(id: int, **overrides) -> dict:
    record = TitleRecord(
        id=id,
        title="The Matrix",
        original_title="The Matrix",
        title_type="movie",
        year=1999,
        genres=["Action", "Sci-Fi"],
        actors=dict(KEANU),
        poster_url=f"https://m.media-amazon.com/images/M/poster{id}._V1_.jpg",
        synopsis="A computer hacker learns about the true nature of reality.",
        certificate="PG-13",
    )
    row = record.to_dict()
    row.pop("kind")
    row.update(overrides)
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def reasons(selection) -> dict[int, str | None]:
    return {
        int(i): (None if pd.isna(r) else r)
        for i, r in zip(selection.decisions["id"], selection.decisions["drop_reason"])
    }


def test_adult_flag_and_adult_genre_always_drop_even_with_blocklist_off():
    titles = frame(title(1), title(2, is_adult=True), title(3, genres=["Drama", "Adult"]))
    settings = MovieFilterSettings(use_certificate_blocklist=False)
    selection = select_movies(titles, settings)
    assert reasons(selection) == {1: None, 2: "adult_flag", 3: "adult_genre"}
    assert selection.movies["id"].tolist() == [1]
    assert selection.drop_counts["adult_flag"] == 1
    assert selection.drop_counts["adult_genre"] == 1


def test_certificate_blocklist_on_by_default_and_reports_what_it_dropped():
    titles = frame(
        title(1, certificate="R"),
        title(2, certificate="NC-17"),
        title(3, certificate="United Kingdom:18"),
        title(4, certificate="VM18"),
        title(5, certificate="PG-13"),
        title(6, certificate=None),
        title(7, certificate="R"),
    )
    selection = select_movies(titles)
    assert selection.movies["id"].tolist() == [5, 6]
    assert selection.drop_counts["certificate"] == 5
    assert selection.dropped_certificates == {"R": 2, "NC-17": 1, "United Kingdom:18": 1, "VM18": 1}

    off = select_movies(titles, MovieFilterSettings(use_certificate_blocklist=False))
    assert off.movies["id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert off.drop_counts["certificate"] == 0
    assert off.dropped_certificates == {}


def test_certificate_blocklist_is_configurable():
    titles = frame(title(1, certificate="R"), title(2, certificate="TV-MA"))
    selection = select_movies(titles, MovieFilterSettings(certificate_blocklist=("TV-MA",)))
    assert selection.movies["id"].tolist() == [1]
    assert selection.dropped_certificates == {"TV-MA": 1}


def test_language_decisions_on_clear_titles():
    titles = frame(
        title(1, original_title="The Good, the Bad and the Ugly"),
        title(2, original_title="Le fabuleux destin d'Amélie Poulain"),
        title(3, original_title="Y tu mamá también"),
        title(4, original_title="Der Himmel über Berlin und die Engel"),
        title(5, original_title="Il buono, il brutto, il cattivo"),
    )
    selection = select_movies(titles)
    assert reasons(selection) == {1: None, 2: "non_english", 3: "non_english", 4: "non_english", 5: "non_english"}
    languages = dict(zip(selection.decisions["id"], selection.decisions["language"]))
    assert languages == {1: "ENGLISH", 2: "FRENCH", 3: "SPANISH", 4: "GERMAN", 5: "ITALIAN"}
    assert selection.movies["language"].tolist() == ["ENGLISH"]
    assert 0.0 < selection.movies["language_confidence"].iloc[0] <= 1.0


def test_language_threshold_is_configurable_and_short_titles_are_not_judged():
    # lingua is under 0.99 sure of this short Spanish title: a strict threshold keeps it.
    text = "Amores perros"
    loose = decide_language(text, threshold=0.3)
    strict = decide_language(text, threshold=0.99)
    assert loose.language == strict.language == "SPANISH"
    assert not loose.keep and loose.reason == "non_english"
    assert strict.keep and strict.reason == "low_confidence"
    # "Jaws" scores as Polish; one Latin word is too little to drop a film for.
    assert decide_language("Jaws", threshold=0.3).keep
    assert decide_language("", threshold=0.3).reason == "no_text"


def test_language_filter_can_be_switched_off():
    titles = frame(title(1, original_title="Le fabuleux destin d'Amélie Poulain"))
    selection = select_movies(titles, MovieFilterSettings(drop_non_english=False))
    assert selection.movies["id"].tolist() == [1]


def test_no_poster_drops_and_missing_fields_are_kept_and_counted():
    titles = frame(
        title(1, poster_url=None),
        title(2, poster_url=""),
        title(3, genres=[]),
        title(4, actors={}, synopsis=None),
        title(5, synopsis="  "),
        title(3),  # duplicate id
    )
    selection = select_movies(titles)
    assert selection.movies["id"].tolist() == [3, 4, 5]
    assert selection.drop_counts["no_poster"] == 2
    assert selection.drop_counts["duplicate"] == 1
    assert selection.missing_counts == {"genre": 1, "cast": 1, "plot": 2}
    assert selection.metadata()["kept"] == 3


def test_parquet_round_trip_cells_are_understood(tmp_path):
    rows = [title(1), title(2, genres=["Drama"], actors={"A B": "https://www.imdb.com/name/nm0000001"})]
    actors_type = pa.map_(pa.string(), pa.string())
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "genres": pa.array([r["genres"] for r in rows], pa.list_(pa.string())),
            "actors": pa.array([list(r["actors"].items()) for r in rows], actors_type),
            "poster_url": [r["poster_url"] for r in rows],
            "original_title": [r["original_title"] for r in rows],
            "is_adult": [False, False],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    loaded = pd.read_parquet(tmp_path / "t.parquet")
    assert as_genre_list(loaded["genres"][1]) == ["Drama"]
    assert as_actor_dict(loaded["actors"][0]) == KEANU
    assert as_actor_dict('{"Keanu Reeves": "https://www.imdb.com/name/nm0000206"}') == KEANU
    assert as_actor_dict([{"name": "Keanu Reeves", "url": KEANU["Keanu Reeves"]}]) == KEANU
    assert as_genre_list("['Drama', 'Comedy']") == ["Drama", "Comedy"]
    assert select_movies(loaded).kept == 2


def test_select_actors_keeps_actors_with_images_and_links_cast():
    def person(id, **kw):
        row = PersonRecord(
            id=id,
            name=f"P{id}",
            image_url=f"https://m.media-amazon.com/images/M/p{id}.jpg",
            professions=["actor"],
            is_actor=True,
        ).to_dict()
        row.pop("kind")
        row.update(kw)
        return row

    persons = frame(
        person(206),
        person(1, professions=["actress", "producer"]),
        person(2, professions=["director"]),
        person(3, image_url=None),
        person(206),
    )
    movies = frame(
        title(
            10,
            actors={
                "Keanu Reeves": "https://www.imdb.com/name/nm0000206",
                "P1": "https://www.imdb.com/name/nm0000001",
                "Someone": "https://www.imdb.com/name/nm0099999",
            },
        ),
        title(11, actors={}),
    )
    selection = select_actors(persons, movies)
    assert selection.actors["id"].tolist() == [206, 1]
    assert selection.movie_actor.to_dict("records") == [
        {"movie_id": 10, "actor_id": 206, "billing_order": 1},
        {"movie_id": 10, "actor_id": 1, "billing_order": 2},
    ]
    assert selection.counts["dropped_not_actor"] == 1
    assert selection.counts["dropped_no_image"] == 1
    assert selection.counts["dropped_duplicate"] == 1
    assert selection.counts["cast_without_actor_record"] == 1


def test_settings_are_plain_dataclasses():
    assert replace(MovieFilterSettings(), language_threshold=0.9).language_threshold == 0.9
