"""The crawl's data rules as core functions, and their results coming with each
partition's materialisation (no separate check that rescans every partition)."""

from __future__ import annotations

from dataclasses import asdict

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from mpds_pipeline.base.layout import DataLayout
from mpds_pipeline.defs.assets.crawl import title_assets
from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, SourcesResource
from mpds_pipeline.imdb.crawl import PageOutcome, one_status_per_id
from mpds_pipeline.imdb.record_store import unique_ids
from mpds_pipeline.sample_server import FaultPlan, FaultRule, SampleImdbServer

FIRST, SECOND = "tt0000001-tt0000050", "tt0000051-tt0000100"


def outcome(item_id: int, status: str = "ok", kind: str = "title") -> PageOutcome:
    return PageOutcome(
        kind,
        item_id,
        f"https://www.imdb.com/title/tt{item_id:07d}/",
        status,
        200,
        None,
        None,
        1,
        "2026-11-28T00:00:00+00:00",
    )


def test_one_status_per_id():
    clean = one_status_per_id(
        [outcome(1), outcome(2, "missing"), outcome(3, "redirect"), outcome(4, "failed")], "title"
    )
    assert clean.passed and clean.details["attempted"] == 4 and clean.details["blocked"] == 0

    blocked = one_status_per_id([outcome(1), outcome(7, "blocked"), outcome(5, "blocked")], "title")
    assert not blocked.passed and blocked.severity == "warn"
    assert blocked.details["blocked_ids"] == "5, 7" and "rerun" in blocked.description

    repeated = one_status_per_id([outcome(1), outcome(1, "missing"), outcome(2, "blocked")], "title")
    assert not repeated.passed and repeated.severity == "error" and repeated.details["repeated_ids"] == "1"

    unknown = one_status_per_id([outcome(1, "teapot")], "title")
    assert not unknown.passed and unknown.severity == "error" and unknown.details["unknown_statuses"] == "teapot"

    # A person partition's gallery pages are outcomes of their own kind: not this rule's.
    assert one_status_per_id([outcome(1, kind="person"), outcome(1, kind="gallery")], "person").passed


def test_unique_ids():
    assert unique_ids([3, 1, 2]).passed
    twice = unique_ids([3, 1, 3, 2, 1, 3])
    assert not twice.passed and twice.severity == "error"
    assert twice.details == {"records": 6, "duplicated_ids": 2, "duplicates": "1, 3"}


def test_each_partition_is_checked_with_its_materialisation(tmp_path):
    """A blocked id shows as a warning naming it, in the run that crawled it; another
    partition's broken outcomes are not this run's business."""
    layout = DataLayout(tmp_path / "data")
    broken = layout.pages("title", SECOND).outcomes
    broken.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([asdict(outcome(51)), asdict(outcome(51, "teapot"))]), broken)

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("title_ranges", [FIRST, SECOND])
    with SampleImdbServer(faults=FaultPlan([FaultRule("waf", ids=frozenset({7}))])) as server:
        resources = {
            "imdb": ImdbClientResource(
                base_url=server.base_url, rate_per_second=50, backoff_base_s=0.05, use_index=False
            ),
            "data_dir": DataDirResource(path=str(layout.root)),
            "sources": SourcesResource(page_sources=["live"]),  # the sample server stands in for live IMDb
        }
        result = materialize(title_assets, partition_key=FIRST, resources=resources, instance=instance)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"one_status_per_id", "unique_ids"}
    statuses = checks["one_status_per_id"]
    assert not statuses.passed and statuses.severity == AssetCheckSeverity.WARN
    assert statuses.metadata["blocked_ids"].value == "7" and statuses.metadata["attempted"].value == 50
    assert checks["unique_ids"].passed and checks["unique_ids"].metadata["records"].value > 0
    # The checks ran inside the asset steps: no step of their own.
    steps = {e.step_key for e in result.all_events if e.is_step_start}
    assert steps == {"title_pages", "title_records"}
