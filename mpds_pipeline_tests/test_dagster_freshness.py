"""The dataset index and freshness: an index-driven crawl asks only for titles that
exist (about one request per kept title), the ranges sensor extends the crawl past the
highest id seen as new dynamic partitions, and the re-crawl policy revisits incomplete
records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.defs.assets.crawl import title_assets
from mpds_pipeline.defs.assets.freshness import crawl_ranges, imdb_index, ranges_to_add
from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, SourcesResource
from mpds_pipeline.imdb.crawl_plan import stale_incomplete_ids
from mpds_pipeline.sample_server import SampleImdbServer, sample_title

KEY = "tt0000001-tt0000050"


@pytest.fixture
def indexed(tmp_path):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [KEY])
    with SampleImdbServer(dataset_titles=(1, 300)) as server:
        resources = {
            "imdb": ImdbClientResource(
                base_url=server.base_url,
                rate_per_second=50,
                backoff_base_s=0.05,
                datasets_url=f"{server.base_url}/datasets",
            ),
            "data_dir": DataDirResource(path=str(tmp_path / "data")),
            "sources": SourcesResource(page_sources=["live"]),  # the sample server stands in for live IMDb
        }
        assert materialize([imdb_index], resources=resources, instance=instance).success
        yield server, resources, instance, DataLayout(tmp_path / "data")


def test_index_driven_crawl_requests_only_existing_non_adult_titles(indexed):
    server, resources, instance, layout = indexed
    result = materialize(title_assets, partition_key=KEY, resources=resources, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("title_pages")[0].metadata
    assert metadata["id_source"].value == "index"
    assert metadata["requests_per_ok_page"].value <= 1.05
    assert metadata["skipped_adult"].value > 0
    requested = {int(path.split("tt")[1]) for path in server.request_log if path.startswith("/title/")}
    for title_id in range(1, 51):
        truth = sample_title(title_id)
        should_fetch = truth["status"] == "ok" and not truth.get("is_adult")
        assert (title_id in requested) == should_fetch, (title_id, truth["status"])


def test_ranges_sensor_adds_new_ranges_past_the_highest_id(indexed, monkeypatch):
    _, resources, instance, _ = indexed
    context = build_sensor_context(instance=instance, resources=resources)
    result = crawl_ranges(context)
    assert isinstance(result, SensorResult)
    added = [key for request in result.dynamic_partitions_requests for key in request.partition_keys]
    run_keys = [request.partition_key for request in result.run_requests]
    # Configured ranges (1-200 in tests) are registered; the index lists titles up to ~300,
    # so ranges past the configured end are added, each with a crawl run.
    assert "tt0000051-tt0000100" in added
    assert run_keys and all(key in added for key in run_keys)
    assert run_keys[-1].endswith("tt0000300")
    assert ranges_to_add(["tt0000001-tt0000050"], 120, 50) == ["tt0000051-tt0000100", "tt0000101-tt0000150"]
    assert ranges_to_add(["tt0000001-tt0000050"], 40, 50) == []


def test_recrawl_revisits_only_old_incomplete_records(indexed):
    server, resources, instance, layout = indexed
    assert materialize(title_assets, partition_key=KEY, resources=resources, instance=instance).success
    records, pages = layout.records_file("title", KEY), layout.pages_dir("title", KEY)
    assert stale_incomplete_ids(records, pages, after_days=30) == []  # just fetched: too young
    later = datetime.now(timezone.utc) + timedelta(days=31)
    stale = stale_incomplete_ids(records, pages, after_days=30, now=later)
    incomplete = [
        i
        for i in range(1, 51)
        if sample_title(i)["status"] == "ok"
        and not sample_title(i).get("is_adult")
        and (not sample_title(i).get("poster_token") or not sample_title(i).get("plot"))
    ]
    assert stale and set(stale) <= set(incomplete)

    before = server.request_count("/title/")
    result = materialize(
        title_assets,
        partition_key=KEY,
        resources=resources,
        instance=instance,
        run_config={"ops": {"title_pages": {"config": {"recrawl_incomplete_after_days": -1}}}},
    )
    assert result.success
    assert server.request_count("/title/") - before == len(stale)
