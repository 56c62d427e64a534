"""Automation that grows the dataset from the archives and OMDb, against the sample
server on loopback, with Dagster's sensor and schedule test contexts: a new Common
Crawl release crawls only the partitions still missing ids, asking only that crawl; a
repeated tick launches nothing; a paused host makes its automation skip, naming the host
and the date it tries again, with no request sent."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context, materialize

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.defs.assets.automation import new_archive_crawls
from mpds_pipeline.defs.assets.crawl import title_assets
from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, SourcesResource
from mpds_pipeline.imdb.crawl import read_outcomes
from mpds_pipeline.sample_server import SampleImdbServer, sample_title

NEW_CRAWL = "CC-MAIN-2026-08"
WITH_GAP = "tt0000001-tt0000013"  # id 8 is captured nowhere (sample archives: id % 10 == 8); 13 has no poster
COMPLETE = "tt0000020-tt0000027"  # every id captured, every record with a poster
NO_POSTER = "tt0000031-tt0000040"  # 38: captured nowhere, and its page would have no poster
NEVER_CRAWLED = "tt0000041-tt0000050"
CRAWLED = [WITH_GAP, COMPLETE, NO_POSTER]


def _sources(server, **overrides) -> SourcesResource:
    values = dict(
        page_sources=["common_crawl", "wayback"],
        cc_index_url=f"{server.base_url}/cc-index",
        cc_data_url=f"{server.base_url}/cc-data",
        wayback_url=f"{server.base_url}/wayback",
        cc_index_rate=0,
        cc_data_rate=0,
        wayback_rate=0,
    )
    return SourcesResource(**{**values, **overrides})


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """Three partitions crawled from the sample archives, a fourth registered only."""
    root = tmp_path_factory.mktemp("automation") / "data"
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [*CRAWLED, NEVER_CRAWLED])
    with SampleImdbServer() as server:
        resources = {
            "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=0, use_index=False),
            "data_dir": DataDirResource(path=str(root)),
            "sources": _sources(server),
        }
        for key in CRAWLED:
            assert materialize(title_assets, partition_key=key, resources=resources, instance=instance).success
        yield server, resources, instance, DataLayout(root)


def _tick(instance, resources, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    return new_archive_crawls(context), context.cursor


def test_new_crawl_runs_only_partitions_with_missing_ids_asking_only_that_crawl(crawled):
    server, resources, instance, layout = crawled
    status = {o.id: o.status for o in read_outcomes(layout.pages_dir("title", WITH_GAP))}
    assert status[8] == "uncaptured"
    assert all(o.status != "uncaptured" for o in read_outcomes(layout.pages_dir("title", COMPLETE)))

    # First tick: learns the crawls listed, launches nothing.
    result, cursor = _tick(instance, resources)
    assert isinstance(result, SkipReason) and "3 crawls known" in result.skip_message
    result, cursor = _tick(instance, resources, cursor)
    assert isinstance(result, SkipReason) and "no new crawl" in result.skip_message

    server.archives.add_crawl(NEW_CRAWL, ids=[8, 18, 38, 48])
    result, cursor = _tick(instance, resources, cursor)
    assert all(isinstance(r, RunRequest) for r in result)
    assert sorted(r.partition_key for r in result) == [WITH_GAP, NO_POSTER]  # never COMPLETE nor NEVER_CRAWLED
    by_key = {r.partition_key: r for r in result}
    assert by_key[WITH_GAP].run_key == f"{NEW_CRAWL}-{WITH_GAP}"
    assert by_key[WITH_GAP].tags["mpds/missing_ids"] == "4"  # 8, 13 and the redirect and missing ids (7, 11)
    assert by_key[WITH_GAP].run_config["resources"]["sources"]["config"] == {
        "page_sources": ["common_crawl"],
        "capture_policy": NEW_CRAWL,
    }
    # The same tick again: the cursor remembers the crawl, nothing new is requested.
    again, _ = _tick(instance, resources, cursor)
    assert isinstance(again, SkipReason) and f"newest is {NEW_CRAWL}" in again.skip_message
    # A tick that lost its cursor asks again with the same run keys, which Dagster's
    # daemon runs at most once.
    replay, _ = _tick(instance, resources, '{"seen": ["CC-MAIN-2024-10", "CC-MAIN-2019-04", "CC-MAIN-2013-20"]}')
    assert sorted(r.run_key for r in replay) == sorted(r.run_key for r in result)

    # The run as requested: only the new crawl's index is asked, and the gap fills.
    before = {path: len(times) for path, times in server.request_log.items()}
    request = by_key[WITH_GAP]
    run = materialize(
        title_assets,
        partition_key=WITH_GAP,
        instance=instance,
        resources={k: v for k, v in resources.items() if k != "sources"}
        | {"sources": _sources(server, **request.run_config["resources"]["sources"]["config"])},
        run_config={k: v for k, v in request.run_config.items() if k != "resources"},
    )
    assert run.success
    asked = {
        path
        for path, times in server.request_log.items()
        if path.startswith("/cc-index/") and path.endswith("-index") and len(times) > before.get(path, 0)
    }
    assert asked == {f"/cc-index/{NEW_CRAWL}-index"}
    after = {o.id: o for o in read_outcomes(layout.pages_dir("title", WITH_GAP))}
    assert after[8].status == "ok" and after[8].capture_crawl == NEW_CRAWL
    assert sum(o.status == "ok" for o in after.values()) == sum(s == "ok" for s in status.values()) + 1
    # 13 was asked again (no poster) and the new crawl has no capture of it: its page stays.
    assert after[13].status == "ok" and after[13].capture_crawl != NEW_CRAWL


def test_waf_block_pauses_live_imdb_and_its_automation_skips_without_a_request(tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from dagster import SensorResult

    from mpds_pipeline.defs.assets.freshness import crawl_ranges, recrawl_incomplete
    from mpds_pipeline.sample_server.faults import FaultPlan, FaultRule
    from mpds_pipeline.sources.pauses import active_pause

    monkeypatch.setenv("MPDS_PAUSE_DAYS", "3")
    key = "tt0000001-tt0000050"
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [key])
    layout = DataLayout(tmp_path / "data")
    with SampleImdbServer(faults=FaultPlan([FaultRule("waf200", path="^/title/")])) as server:
        resources = {
            "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=0, use_index=False),
            "data_dir": DataDirResource(path=str(layout.root)),
            "sources": SourcesResource(page_sources=["live"]),
        }
        blocked = materialize(
            title_assets, partition_key=key, resources=resources, instance=instance, raise_on_error=False
        )
        assert not blocked.success
        pause = active_pause(layout.paused_hosts_file, "127.0.0.1")
        assert pause is not None and "blocking" in pause.reason
        retry = pause.until_time
        assert timedelta(days=2.9) < retry - datetime.now(timezone.utc) <= timedelta(days=3)
        sent = len(server.requests)

        # The sensors that would crawl live IMDb skip, naming the host and the date.
        result = crawl_ranges(build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, SensorResult) and not result.run_requests
        message = result.skip_reason.skip_message
        assert "127.0.0.1" in message and f"{retry:%Y-%m-%d}" in message
        skipped = recrawl_incomplete(build_sensor_context(instance=instance, resources=resources))
        assert isinstance(skipped, SkipReason) and f"{retry:%Y-%m-%d}" in skipped.skip_message
        # A run launched anyway (by hand) sends nothing either.
        again = materialize(
            title_assets, partition_key=key, resources=resources, instance=instance, raise_on_error=False
        )
        assert not again.success
        assert len(server.requests) == sent

        # With the archives configured too, new ranges' runs leave live out while it is paused.
        monkeypatch.setattr("mpds_pipeline.defs.assets.freshness.highest_known_title_id", lambda layout: 260)
        with_archives = {**resources, "sources": SourcesResource(page_sources=["common_crawl", "live"])}
        result = crawl_ranges(build_sensor_context(instance=instance, resources=with_archives))
        assert result.run_requests
        for request in result.run_requests:
            assert request.run_config["resources"]["sources"]["config"]["page_sources"] == ["common_crawl"]


def test_omdb_schedule_spreads_lookups_over_days_and_resumes_without_asking_twice(tmp_path, monkeypatch):
    from collections import Counter
    from datetime import datetime, timezone

    from dagster import build_schedule_context, instance_for_test

    from mpds_pipeline.defs.assets.automation import omdb_daily
    from mpds_pipeline.defs.assets.omdb import omdb_titles
    from mpds_pipeline.sources.automation import omdb_pending_ids
    from mpds_pipeline.sources.pauses import clear_pause

    key = "tt0000001-tt0000050"
    layout = DataLayout(tmp_path / "data")
    # A schedule's test context needs a persistent instance.
    with instance_for_test(temp_dir=str(tmp_path)) as instance, SampleImdbServer() as server:
        instance.add_dynamic_partitions("title_ranges", [key])
        resources = {
            "imdb": ImdbClientResource(base_url=server.base_url, rate_per_second=0, use_index=False),
            "data_dir": DataDirResource(path=str(layout.root)),
            "sources": _sources(server, omdb_url=f"{server.base_url}/omdb", omdb_rate_per_second=0),
        }
        # The archives' pages first (no key yet: OMDb is not asked).
        assert materialize(title_assets, partition_key=key, resources=resources, instance=instance).success
        pending = omdb_pending_ids(layout, key)
        assert len(pending) >= 4 and pending == sorted(pending, reverse=True)

        def tick(when):
            # As a context manager: the instance it opens is closed again (Dagster keeps a
            # process-wide pointer to it that would break later runs in this process).
            with build_schedule_context(
                instance=instance, resources=resources, scheduled_execution_time=when
            ) as context:
                return omdb_daily(context)

        day1 = datetime.now(timezone.utc)
        assert "MPDS_OMDB_API_KEY" in tick(day1).skip_message
        monkeypatch.setenv("MPDS_OMDB_API_KEY", "sample-omdb-key")
        server.omdb.daily_limit = len(pending) // 2  # OMDb's day ends halfway through
        requests = tick(day1)
        assert [r.partition_key for r in requests] == [key]
        assert requests[0].tags["mpds/omdb_pending"] == str(len(pending))

        def run():
            return materialize(
                [omdb_titles, title_assets[1]],
                partition_key=key,
                resources=resources,
                instance=instance,
                selection=["omdb_titles", "title_records"],
            )

        first = run()
        assert first.success  # the limit ends the run cleanly
        limit, refused = server.omdb.daily_limit, server.omdb.asked[-1]
        metadata = first.asset_materializations_for_node("omdb_titles")[0].metadata
        assert metadata["stopped"].value == "limit"
        skipped = tick(day1)  # the same day: OMDb is paused until the next UTC day
        assert isinstance(skipped, SkipReason) and "until" in skipped.skip_message
        assert server.base_url.split("//")[1].split(":")[0] in skipped.skip_message

        # The next day: OMDb's counts start again and the pause has ended.
        server.omdb.new_day()
        clear_pause(layout.paused_hosts_file, "127.0.0.1")
        assert [r.partition_key for r in tick(day1)] == [key]
        second = run()
        assert second.success
        assert len(omdb_pending_ids(layout, key)) == len(pending) - 2 * limit
        asked = Counter(server.omdb.asked)
        # No id asked twice, but the one OMDb refused for the limit (never answered).
        assert [i for i, n in asked.items() if n > 1] == [refused]
        assert sum(asked.values()) == 2 * limit + 2  # each day: its quota answered, then the refusal


def test_freshness_view_reports_each_source_and_the_size_over_time(crawled):
    from mpds_pipeline.defs.assets.automation import dataset_freshness

    _, resources, instance, layout = crawled
    result = materialize([dataset_freshness], resources=resources, instance=instance)
    assert result.success
    metadata = result.asset_materializations_for_node("dataset_freshness")[0].metadata
    outcomes = [o for key in CRAWLED for o in read_outcomes(layout.pages_dir("title", key))]
    ok = [o for o in outcomes if o.status == "ok"]
    assert metadata["titles_with_page"].value == len(ok)
    assert metadata["partitions_never_crawled"].value == 1
    assert metadata["ids_pending"].value == sum(o.status == "uncaptured" for o in outcomes)
    table = metadata["sources"].value
    newest = max(o.capture_crawl for o in ok if o.capture_crawl)
    assert "common_crawl" in table and "wayback" in table and newest in table and "omdb" in table
    assert "titles_with_page" in metadata["size_over_time"].value


def test_sample_server_publishes_a_crawl_on_request():
    import json
    from urllib.request import urlopen

    with SampleImdbServer() as server:
        with urlopen(f"{server.base_url}/cc-index/_add-crawl?id={NEW_CRAWL}") as reply:
            assert json.loads(reply.read()) == {"added": NEW_CRAWL}
        with urlopen(f"{server.base_url}/cc-index/collinfo.json") as reply:
            listed = [c["id"] for c in json.loads(reply.read())]
        assert listed[0] == NEW_CRAWL and len(listed) == 4
        lines = server.archives.index_lines(NEW_CRAWL, "www.imdb.com/title/tt00000", only_200=True)
        nowhere = {i for i in range(1, 100) if i % 10 == 8 and sample_title(i)["status"] == "ok"}
        assert nowhere and {c.id for c in lines} == nowhere  # the ids up to 99 no archive held
