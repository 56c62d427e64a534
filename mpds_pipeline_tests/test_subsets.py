"""LoRA subsets: posters of a genre, an era, an actor or a certificate, and what was kept."""

from __future__ import annotations

import pandas as pd

from mpds_pipeline.curate.subsets import SubsetSpec, select_subset
from mpds_pipeline.imdb.ids import person_url

MOVIES = pd.DataFrame(
    [
        {
            "id": 1,
            "genres": ["Horror"],
            "year": 1979,
            "certificate": "R",
            "actors": {"Sigourney Weaver": person_url(244)},
        },
        {"id": 2, "genres": ["Horror", "Comedy"], "year": 1984, "certificate": "US:PG", "actors": {}},
        {"id": 3, "genres": ["Drama"], "year": 1994, "certificate": "PG-13", "actors": {"Tom Hanks": person_url(158)}},
        {"id": 4, "genres": ["Comedy"], "year": None, "certificate": None, "actors": {"Tom Hanks": person_url(158)}},
        {"id": 5, "genres": [], "year": 2010, "certificate": "United States:PG-13", "actors": None},
    ]
)


def test_each_field_filters_and_an_empty_spec_keeps_everything():
    everything = select_subset(MOVIES, SubsetSpec())
    assert SubsetSpec().is_everything and everything.ids == {1, 2, 3, 4, 5}
    assert select_subset(MOVIES, SubsetSpec(genres=["horror"])).ids == {1, 2}  # any genre, any case
    assert select_subset(MOVIES, SubsetSpec(genres=["Horror", "Drama"])).ids == {1, 2, 3}
    assert select_subset(MOVIES, SubsetSpec(year_min=1980, year_max=1999)).ids == {2, 3}  # no year: out
    assert select_subset(MOVIES, SubsetSpec(year_max=1980)).ids == {1}
    assert select_subset(MOVIES, SubsetSpec(actors=["tom hanks"])).ids == {3, 4}
    assert select_subset(MOVIES, SubsetSpec(actors=["nm0000244"])).ids == {1}  # by person id
    # "PG-13" matches the normalised certificate whatever the country prefix.
    assert select_subset(MOVIES, SubsetSpec(certificates=["PG-13"])).ids == {3, 5}
    assert select_subset(MOVIES, SubsetSpec(certificates=["PG"])).ids == {2}
    # Fields combine: every given field must hold.
    both = SubsetSpec(genres=["Comedy"], actors=["Tom Hanks"])
    assert select_subset(MOVIES, both).ids == {4}


def test_the_subset_reports_its_size_and_composition():
    subset = select_subset(MOVIES, SubsetSpec(genres=["Horror", "Comedy"]))
    metadata = subset.metadata()
    assert metadata["subset"] == "genres Horror or Comedy"
    assert metadata["subset_size"] == 3 and metadata["subset_of"] == 5
    assert metadata["subset_genres"] == {"Horror": 2, "Comedy": 2}
    assert metadata["subset_decades"] == {"1970s": 1, "1980s": 1, "unknown": 1}
    assert metadata["subset_certificates"] == {"R": 1, "US:PG": 1, "none": 1}
    assert metadata["subset_spec"] == {"genres": ["Horror", "Comedy"]}
