"""OMDb through Dagster on loopback: pages IMDb would not serve come from OMDb, field by
field where a page lacks a poster or plot; the export's provenance.parquet traces every
exported poster to the source that named it; the key reaches no log, metadata or file,
and a refused key fails the run saying what to do."""

from __future__ import annotations

import hashlib
import logging

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.curate.store import read_table
from mpds_pipeline.definitions import export
from mpds_pipeline.defs.assets.crawl import title_assets
from mpds_pipeline.defs.assets.curation import movies, poster_images
from mpds_pipeline.defs.assets.omdb import omdb_titles
from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, SourcesResource
from mpds_pipeline.imdb.record_store import read_records
from mpds_pipeline.sample_server import SampleImdbServer, sample_title

PARTITION = "tt0000001-tt0000050"
KEY = "omdb-test-key-5f1c"
FAILING_IDS = range(20, 25)  # IMDb answers 500 for these pages: only OMDb describes them


def _resources(server, root):
    return {
        "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=100, backoff_base_s=0.01, max_retries=1),
        "data_dir": DataDirResource(path=str(root)),
        "sources": SourcesResource(omdb_url=f"{server.base_url}/omdb", omdb_rate_per_second=0),
    }


def _instance():
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [PARTITION])
    return instance


def _assert_key_nowhere(key: str, root, instance, caplog) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    assert not [str(p) for p in files if key.encode() in p.read_bytes()], "the key was written to a file"
    for record in instance.get_records_for_run(run_id=instance.get_runs()[0].run_id).records:
        assert key not in repr(record.event_log_entry)
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            assert key not in repr(entry), "the key is in the event log (a message or metadata)"
    assert caplog.records and not [r for r in caplog.records if key in r.getMessage()]


@pytest.fixture
def omdb_env(monkeypatch):
    monkeypatch.setenv("MPDS_OMDB_API_KEY", KEY)
    monkeypatch.setenv("MPDS_PAGE_SOURCES", "live")  # these tests use the sample server as live IMDb


def test_omdb_fills_what_pages_lack_and_provenance_traces_every_poster(tmp_path, omdb_env, caplog):
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "data"
    instance = _instance()
    with SampleImdbServer(faults=f"500,ids={FAILING_IDS.start}-{FAILING_IDS.stop - 1}") as server:
        server.omdb.keys.add(KEY)
        resources = _resources(server, root)
        crawl = materialize(
            [*title_assets, omdb_titles], partition_key=PARTITION, resources=resources, instance=instance
        )
        assert crawl.success
        config = {"ops": {"movies": {"config": {"drop_non_english": False}}}}
        assert materialize([movies], resources=resources, instance=instance, run_config=config).success
        assert materialize([poster_images], partition_key=PARTITION, resources=resources, instance=instance).success
        final = materialize([export], resources=resources, instance=instance)
        assert final.success

    layout = DataLayout(root)
    truth = {i: sample_title(i) for i in range(1, 51)}
    omdb_meta = crawl.asset_materializations_for_node("omdb_titles")[0].metadata
    # Asked: the failing pages that exist, and the pages without a poster or plot.
    expected = {i for i in FAILING_IDS if truth[i]["status"] == "ok"} | {
        i for i, t in truth.items() if t["status"] == "ok" and (not t["poster_token"] or not t["plot"])
    }
    assert omdb_meta["asked"].value == len(expected) and omdb_meta["stopped"].value == ""
    assert "poster_hosts_not_allowed" not in omdb_meta  # the sample server is the allowed base host

    records = read_records(layout.records_dir("title"), "title").set_index("id")
    for title_id in FAILING_IDS:
        record = records.loc[title_id]
        assert record["era"] == "omdb" and record["field_sources"]["poster_url"] == "omdb"
        assert record["title"] == truth[title_id]["title"]
    no_plot = next(i for i, t in truth.items() if t["status"] == "ok" and not t["plot"] and not t["is_adult"])
    assert records.loc[no_plot, "field_sources"]["synopsis"] == "omdb"
    assert records.loc[no_plot, "field_sources"]["poster_url"] == "page"
    full = next(i for i, t in truth.items() if t["status"] == "ok" and t["plot"] and t["poster_token"])
    assert set(records.loc[full, "field_sources"].values()) == {"page"}  # no index, and OMDb not asked
    assert read_table(layout.movies_file)["field_sources"].map(bool).all()

    provenance = pd.read_parquet(layout.export.provenance)
    posters = provenance[provenance["kind"] == "poster"].set_index("id")
    exported = sorted(layout.export.posters_dir.glob("*.jpg"))
    assert exported and len(posters) == len(exported) and posters.index.is_unique
    for path in exported:
        row = posters.loc[int(path.stem)]
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row["image_url"].startswith(server.base_url)
        expected_source = "omdb" if int(path.stem) in FAILING_IDS else "live"
        assert row["source"] == expected_source
        if expected_source == "omdb":
            assert "apikey=REDACTED" in row["source_url"] and "/omdb/" in row["source_url"]
        else:
            assert row["source_url"].rstrip("/").endswith(f"/title/tt{int(path.stem):07d}")
    pages = provenance[provenance["kind"] == "title_page"]
    meta_ids = set(pd.read_parquet(layout.export.parquet("meta"))["id"])
    assert set(pages["id"]) == meta_ids
    assert set(pages.loc[pages["source"] == "omdb", "id"]) >= {i for i in FAILING_IDS if i in meta_ids}

    export_meta = final.asset_materializations_for_node("export")[0].metadata
    assert export_meta["provenance_omdb"].value == int((provenance["source"] == "omdb").sum()) > 0
    assert export_meta["provenance_live"].value == int((provenance["source"] == "live").sum()) > 0
    _assert_key_nowhere(KEY, tmp_path, instance, caplog)


def test_a_refused_key_fails_the_run_saying_what_to_do(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    bad = "refused-key-9a7e"
    monkeypatch.setenv("MPDS_OMDB_API_KEY", bad)
    monkeypatch.setenv("MPDS_PAGE_SOURCES", "live")
    root = tmp_path / "data"
    instance = _instance()
    with SampleImdbServer(faults="500,ids=20-24") as server:
        resources = _resources(server, root)
        result = materialize(
            [title_assets[0], omdb_titles],
            partition_key=PARTITION,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert server.request_count("/omdb") == 1
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "Invalid API key!" in message and "MPDS_OMDB_API_KEY" in message and bad not in message
    _assert_key_nowhere(bad, tmp_path, instance, caplog)


def test_without_a_key_omdb_titles_does_nothing_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("MPDS_OMDB_API_KEY", raising=False)
    monkeypatch.setenv("MPDS_PAGE_SOURCES", "live")
    instance = _instance()
    with SampleImdbServer(faults="500,ids=20-24") as server:
        result = materialize(
            [*title_assets, omdb_titles],
            partition_key=PARTITION,
            resources=_resources(server, tmp_path),
            instance=instance,
        )
        assert server.request_count("/omdb") == 0
    assert result.success
    metadata = result.asset_materializations_for_node("omdb_titles")[0].metadata
    assert "MPDS_OMDB_API_KEY" in metadata["skipped"].value


def test_the_limit_stops_the_asset_cleanly_and_pauses_omdb(tmp_path, omdb_env):
    from mpds_pipeline.sources.pauses import active_pause

    instance = _instance()
    with SampleImdbServer(faults="500,ids=20-24") as server:
        server.omdb.keys.add(KEY)
        server.omdb.daily_limit = 2
        result = materialize(
            [*title_assets, omdb_titles],
            partition_key=PARTITION,
            resources=_resources(server, tmp_path),
            instance=instance,
        )
    assert result.success  # a spent day is no failure: the next day's run goes on
    metadata = result.asset_materializations_for_node("omdb_titles")[0].metadata
    assert metadata["stopped"].value == "limit" and metadata["answers_ok"].value == 2
    assert metadata["remaining"].value > 0
    assert active_pause(DataLayout(tmp_path).paused_hosts_file, "127.0.0.1") is not None
