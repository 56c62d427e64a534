"""The pipeline through Dagster, from crawl to export and the caption re-merge.

In-process ``materialize()`` runs against the sample server with a tiny BLIP-2, then
the rectification sensor launches the re-merge and the correction reaches posters.csv.
"""

from __future__ import annotations

import json

import pandas as pd
from dagster import AssetKey

from mpds_pipeline.sample_server import sample_title
from mpds_pipeline_tests.pipeline_helpers import remerge_via_sensor


def test_export_follows_the_papers_format_and_passes_its_checks(pipeline):
    export_dir = pipeline["root"] / "export"
    meta = pd.read_csv(export_dir / "meta.csv")
    posters = pd.read_csv(export_dir / "posters.csv")
    actors_csv = pd.read_csv(export_dir / "actors.csv")
    assert list(meta.columns) == ["id", "movie-url", "title", "genres", "actors", "poster-url", "synopsis"]
    assert list(posters.columns) == ["id", "text"]
    assert list(actors_csv.columns) == ["id", "actors-url", "actors name", "image-url"]
    assert len(posters) > 10
    for movie_id in meta["id"]:
        truth = sample_title(int(movie_id))
        assert not truth.get("is_adult"), f"adult title {movie_id} exported"
    checks = pipeline["final"].get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.metadata for c in checks]
    # The poster texts are the integrated prompts: the tiny BLIP-2's caption comes first.
    prompts = pd.read_parquet(pipeline["root"] / "prompts" / "poster_prompts.parquet").set_index("id")
    for row in posters.itertuples():
        assert row.text == prompts.loc[row.id, "text"]
        assert prompts.loc[row.id, "vision_source"] == "blip2"


def test_actor_photos_are_cropped_counted_and_exported(pipeline):
    metadata = pipeline["curated"].asset_materializations_for_node("actor_photos")[0].metadata
    assert metadata["face_matching"].value == "on" and metadata["actors_with_min_photos"].value > 10
    reasons = {row.data["reason"] for row in metadata["drop_reasons"].value.records}
    assert {"names_others", "no_face", "several_faces", "face_mismatch"} <= reasons
    assert metadata["crops"].value.startswith("![face crops")  # shown inline in the UI
    export_dir = pipeline["root"] / "export"
    photos = pd.read_csv(export_dir / "actor_photos.csv")
    listed = set(pd.read_csv(export_dir / "actors.csv")["id"])
    assert set(photos["actor_id"]) <= listed and photos.groupby("actor_id").size().between(1, 5).all()
    assert {"primary", "strip", "gallery"} == set(photos["source"])
    assert all((export_dir / name).stat().st_size > 5000 for name in photos["file_name"])
    # The person pages asked for galleries only where the strip was too thin.
    pages = (
        pipeline["instance"].get_latest_materialization_event(AssetKey("person_pages")).asset_materialization.metadata
    )
    assert 0 < pages["galleries_wanted"].value < pages["status_ok"].value


def test_statistics_and_drop_reasons_are_reported(pipeline):
    stats_dir = pipeline["root"] / "export" / "stats"
    assert {"genres.png", "record_types.png", "missing.png", "stats.md"} <= {p.name for p in stats_dir.iterdir()}
    decisions = pd.read_parquet(pipeline["root"] / "curated" / "movie_decisions.parquet")
    reasons = set(decisions.loc[~decisions["kept"], "drop_reason"])
    assert {"adult_flag", "no_poster", "non_english"} <= reasons


def test_sensor_picks_up_a_correction_and_the_remerge_reaches_posters_csv(pipeline):
    root = pipeline["root"]
    posters = pd.read_csv(root / "export" / "posters.csv")
    target = int(posters["id"].iloc[0])
    folder = root / "rectifications"
    folder.mkdir(exist_ok=True)
    (folder / "batch-1.csv").write_text(
        f"id,text,reviewer\n{target},a red car explodes in front of a city skyline,ana\n999999,unknown id,ana\n"
    )

    remerge_via_sensor(pipeline)

    merged = pd.read_csv(root / "export" / "posters.csv").set_index("id")
    assert merged.loc[target, "text"].startswith("a red car explodes in front of a city skyline")
    audit = pd.read_parquet(root / "prompts" / "rectification_audit.parquet")
    assert list(audit.loc[audit["id"] == target, "reviewer"]) == ["ana"]
    rejected = pd.read_parquet(root / "prompts" / "rectification_rejected.parquet")
    assert list(rejected.loc[rejected["id"] == "999999", "reason"]) == ["unknown id"]
    entries = [json.loads(line) for line in (root / "export" / "posters" / "metadata.jsonl").read_text().splitlines()]
    assert any(e["file_name"] == f"{target}.jpg" and e["text"].startswith("a red car") for e in entries)
