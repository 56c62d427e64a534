"""Rehydrate mode through Dagster: a released meta.csv/posters.csv, no crawl at all,
gives movies, verified posters and an export that keeps the released texts."""

from __future__ import annotations

import csv
import json

import pandas as pd
from dagster import DagsterInstance, materialize

from mpds_pipeline.definitions import export
from mpds_pipeline.defs.assets.curation import movies, poster_images
from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource
from mpds_pipeline.sample_server import SampleImdbServer, sample_title

KEY = "tt0000001-tt0000050"


def write_release(folder, base_url):
    meta_rows, text_rows = [], []
    for title_id in range(1, 51):
        truth = sample_title(title_id)
        if truth["status"] != "ok" or truth.get("is_adult") or not truth.get("poster_token"):
            continue
        meta_rows.append(
            {
                "id": title_id,
                "movie-url": f"https://www.imdb.com/title/tt{title_id:07d}",
                "title": truth["title"],
                "genres": json.dumps(truth["genres"][:3]),
                "actors": json.dumps(
                    {name: f"https://www.imdb.com/name/nm{pid:07d}" for pid, name in truth["cast"][:3]}
                ),
                "poster-url": f"{base_url}/images/M/{truth['poster_token']}._V1_.jpg",
                "synopsis": truth.get("plot") or "",
            }
        )
        text_rows.append({"id": title_id, "text": f"released text for {title_id}"})
    meta_rows.append({**meta_rows[0], "id": "tt-not-a-number"})  # a malformed row
    with open(folder / "meta.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(meta_rows[0]))
        writer.writeheader()
        writer.writerows(meta_rows)
    pd.DataFrame(text_rows).to_csv(folder / "posters.csv", index=False)
    return len(meta_rows) - 1


def test_release_rebuilds_the_dataset_without_a_crawl(tmp_path):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [KEY])
    with SampleImdbServer() as server:
        good_rows = write_release(tmp_path, server.base_url)
        resources = {
            "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=50, backoff_base_s=0.05),
            "data_dir": DataDirResource(path=str(tmp_path / "data")),
        }
        config = {
            "ops": {
                "movies": {
                    "config": {
                        "source": "release",
                        "release_meta_csv": str(tmp_path / "meta.csv"),
                        "release_posters_csv": str(tmp_path / "posters.csv"),
                    }
                }
            }
        }
        result = materialize([movies], resources=resources, instance=instance, run_config=config)
        assert result.success
        metadata = result.asset_materializations_for_node("movies")[0].metadata
        assert metadata["release_bad_rows"].value == 1
        assert "row" in metadata["release_errors_preview"].value and "id" in metadata["release_errors_preview"].value
        assert materialize([poster_images], partition_key=KEY, resources=resources, instance=instance).success
        final = materialize([export], resources=resources, instance=instance)
        assert final.success
        assert not [p for p in server.request_log if p.startswith(("/title/", "/name/"))]  # no page crawled

    posters = pd.read_csv(tmp_path / "data" / "export" / "posters.csv")
    meta = pd.read_csv(tmp_path / "data" / "export" / "meta.csv")
    assert len(meta) == good_rows
    # Posters under 5 KB are dropped; every other poster keeps the released text.
    small = {i for i in meta["id"] if sample_title(int(i)).get("small_poster")}
    assert set(posters["id"]) == set(meta["id"]) - small and len(posters) > 0
    assert all(text == f"released text for {i}" for i, text in zip(posters["id"], posters["text"]))
    checks = final.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
