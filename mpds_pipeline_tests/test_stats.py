"""Fig. 2 statistics: genre percentages, record types, missing fields, PNGs and markdown."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from mpds_pipeline.curate.stats import export_statistics


def test_statistics_percentages_plots_and_table(tmp_path):
    movies = pd.DataFrame(
        [
            {"id": 1, "title_type": "movie", "genres": ["Drama", "Comedy"], "actors": {"A": "u"}, "synopsis": "x"},
            {"id": 2, "title_type": "movie", "genres": ["Drama"], "actors": {}, "synopsis": None},
            {"id": 3, "title_type": "short", "genres": [], "actors": {"B": "u"}, "synopsis": "y"},
            {"id": 4, "title_type": None, "genres": '["Drama", "Drama"]', "actors": None, "synopsis": " "},
        ]
    )
    result = export_statistics(movies, tmp_path / "stats")
    assert result.records == 4
    assert result.genre_percent == {"Drama": 75.0, "Comedy": 25.0}  # a genre counts once per record
    assert result.record_type_percent == {"movie": 50.0, "short": 25.0, "unknown": 25.0}
    assert result.missing_percent == {"genre": 25.0, "cast": 50.0, "plot": 50.0}
    for name in ("genres", "record_types", "missing"):
        with Image.open(result.files[name]) as image:
            assert image.format == "PNG" and image.width > 100
    assert "| Drama | 75.00 |" in result.markdown
    assert "| plot | 50.00 |" in result.markdown
    assert (tmp_path / "stats" / "stats.md").read_text() == result.markdown


def test_statistics_of_nothing_do_not_fail(tmp_path):
    result = export_statistics(pd.DataFrame(columns=["id", "genres"]), tmp_path)
    assert result.records == 0 and result.missing_percent == {"genre": 0.0, "cast": 0.0, "plot": 0.0}
