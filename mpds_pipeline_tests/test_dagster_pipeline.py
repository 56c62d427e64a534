"""The pipeline through Dagster, from crawl to export and the caption re-merge.

In-process ``materialize()`` runs against the sample server with a tiny BLIP-2, then
the rectification sensor launches the re-merge and the correction reaches posters.csv.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, RunRequest, build_sensor_context, materialize

from mpds_pipeline.assets.captions import (
    poster_prompts,
    rectification_merge_job,
    rectifications,
    rectifications_sensor,
    vision_prompts,
)
from mpds_pipeline.assets.crawl import person_assets, title_assets
from mpds_pipeline.assets.curation import actor_images, actors, dataset_statistics, movies, poster_images
from mpds_pipeline.definitions import export, export_contract
from mpds_pipeline.resources import DataDirResource, ImdbClientResource, ModelsResource
from mpds_pipeline.sample_server import SampleImdbServer, sample_title

TITLE_KEY, PERSON_KEY = "tt0000001-tt0000050", "nm0000001-nm0000050"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Materialise every stage up to the export once; tests inspect the result."""
    from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

    root = tmp_path_factory.mktemp("pipeline")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [TITLE_KEY])
    instance.add_dynamic_partitions("person_ranges", [PERSON_KEY])
    with SampleImdbServer() as server:
        resources = {
            "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=50, backoff_base_s=0.05),
            "data_dir": DataDirResource(path=str(root / "data")),
            "models": ModelsResource(blip2=str(save_tiny_blip2(root / "tiny-blip2")), device="cpu"),
        }

        def run(assets, partition=None, checks=()):
            result = materialize([*assets, *checks], partition_key=partition, resources=resources, instance=instance)
            assert result.success
            return result

        run(title_assets, TITLE_KEY)
        run(person_assets, PERSON_KEY)
        run([movies, actors, actor_images, dataset_statistics])
        run([poster_images, vision_prompts], TITLE_KEY)
        final = run([rectifications, poster_prompts, export], checks=[export_contract])
    return {"root": root / "data", "resources": resources, "instance": instance, "final": final}


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


def test_statistics_and_drop_reasons_are_reported(pipeline):
    stats_dir = pipeline["root"] / "export" / "stats"
    assert {"genres.png", "record_types.png", "missing.png", "stats.md"} <= {p.name for p in stats_dir.iterdir()}
    decisions = pd.read_parquet(pipeline["root"] / "curated" / "movie_decisions.parquet")
    reasons = set(decisions.loc[~decisions["kept"], "drop_reason"])
    assert {"adult_flag", "no_poster", "non_english"} <= reasons


def test_sensor_picks_up_a_correction_and_the_remerge_reaches_posters_csv(pipeline):
    root, resources = pipeline["root"], pipeline["resources"]
    posters = pd.read_csv(root / "export" / "posters.csv")
    target = int(posters["id"].iloc[0])
    folder = root / "rectifications"
    folder.mkdir(exist_ok=True)
    context = build_sensor_context(instance=pipeline["instance"], resources={"data_dir": resources["data_dir"]})
    assert not isinstance(rectifications_sensor(context), RunRequest)  # nothing to merge yet

    (folder / "batch-1.csv").write_text(f"id,text,reviewer\n{target},a red car explodes in front of a city skyline,ana\n999999,unknown id,ana\n")
    context = build_sensor_context(instance=pipeline["instance"], resources={"data_dir": resources["data_dir"]})
    request = rectifications_sensor(context)
    assert isinstance(request, RunRequest)

    defs = Definitions(
        assets=[*title_assets, *person_assets, movies, actors, poster_images, actor_images, vision_prompts,
                rectifications, poster_prompts, export],
        jobs=[rectification_merge_job],
        resources=resources,
    )
    result = defs.resolve_job_def("rectification_merge").execute_in_process(instance=pipeline["instance"])
    assert result.success
    merged = pd.read_csv(root / "export" / "posters.csv").set_index("id")
    assert merged.loc[target, "text"].startswith("a red car explodes in front of a city skyline")
    audit = pd.read_parquet(root / "prompts" / "rectification_audit.parquet")
    assert list(audit["reviewer"]) == ["ana"]
    rejected = pd.read_parquet(root / "prompts" / "rectification_rejected.parquet")
    assert list(rejected["reason"]) == ["unknown id"]
    lines = [json.loads(l) for l in (root / "export" / "posters" / "metadata.jsonl").read_text().splitlines()]
    assert any(l["file_name"] == f"{target}.jpg" and l["text"].startswith("a red car") for l in lines)
