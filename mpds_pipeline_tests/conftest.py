"""Shared fixtures. Tests run offline (no hub lookups, no telemetry) and stand alone: a
session or module fixture is only read; what a test changes is its own copy (``pipeline``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from mpds_pipeline_tests.shared_samples import ABSENT, SHARED_DIR

os.environ["HF_HUB_OFFLINE"] = "1"  # every model a test uses is built in code: never reach the hub
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# Partitions are fixed when the code location loads: give in-process tests small ones.
os.environ.setdefault("MPDS_TITLE_IDS", "1-200")
os.environ.setdefault("MPDS_PERSON_IDS", "1-200")
os.environ.setdefault("MPDS_PARTITION_SIZE", "50")
# The sample server stands in for live IMDb wherever a test crawls through the code
# location (subprocesses inherit this); archive sources are tested with explicit settings.
os.environ.setdefault("MPDS_PAGE_SOURCES", "live")

# One torch thread: on a shared 2-core machine two threads per process thrash (20x slower).
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real PostgreSQL and Redis servers (session fixtures), for the scale-out tests.
pytest_plugins = ["mpds_pipeline_tests.services"]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only real IMDb samples beside the checkout; skip when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(ABSENT)
    return SHARED_DIR


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random SD1.5-shaped models (UNet, VAE, CLIP text encoder, ControlNet, CLIP),
    built once per test session and loaded by path like the real ones."""
    from mpds_pipeline.sample_server.content import english_words
    from mpds_pipeline.vision.tiny_sd import ensure_tiny_models

    # The demo's vocabulary: the sample pages' words are whole tokens.
    return ensure_tiny_models(tmp_path_factory.getbasetemp() / "tiny_models", extra_words=english_words())


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch) -> Path:
    """A throwaway DAGSTER_HOME with the project's instance config (SQLite, no telemetry)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def built_pipeline(tmp_path_factory) -> BuiltPipeline:
    """Materialise every stage up to the export once (in process, sample server, tiny
    BLIP-2) into a folder holding the data, the instance's SQLite storage and the tiny
    BLIP-2. Tests never use it directly: ``pipeline`` hands each one its own copy."""
    from dagster import DagsterInstance, materialize

    from mpds_pipeline.definitions import export
    from mpds_pipeline.defs.assets.actor_photos import actor_photos
    from mpds_pipeline.defs.assets.captions import poster_prompts, rectifications, vision_prompts
    from mpds_pipeline.defs.assets.crawl import person_assets, title_assets
    from mpds_pipeline.defs.assets.curation import actor_images, actors, dataset_statistics, movies, poster_images
    from mpds_pipeline.sample_server import SampleImdbServer
    from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

    root = tmp_path_factory.mktemp("pipeline")
    save_tiny_blip2(root / "tiny-blip2")
    (root / "dagster_home").mkdir()
    instance = DagsterInstance.local_temp(str(root / "dagster_home"))
    instance.add_dynamic_partitions("title_ranges", [PIPELINE_TITLE_KEY])
    instance.add_dynamic_partitions("person_ranges", [PIPELINE_PERSON_KEY])
    with SampleImdbServer() as server, instance:
        resources = _pipeline_resources(root, server.base_url)

        def run(assets, partition=None):
            result = materialize(assets, partition_key=partition, resources=resources, instance=instance)
            assert result.success
            return result

        run(title_assets, PIPELINE_TITLE_KEY)
        run(person_assets, PIPELINE_PERSON_KEY)
        curated = run([movies, actors, actor_images, actor_photos, dataset_statistics])
        run([poster_images, vision_prompts], PIPELINE_TITLE_KEY)
        final = run([rectifications, poster_prompts, export])
    return BuiltPipeline(root, curated, final)


@pytest.fixture
def pipeline(built_pipeline: BuiltPipeline, tmp_path: Path):
    """This test's own copy of the materialised pipeline (data, instance, tiny BLIP-2), so
    what one test adds (corrections, re-merge runs) no other test sees. ``resources`` point
    at the copy; the sample server that crawled it is gone, so nothing here may crawl.
    ``curated`` and ``final`` are the build's run results (read-only records)."""
    from dagster import DagsterInstance

    root = tmp_path / "pipeline"
    shutil.copytree(built_pipeline.root, root, symlinks=True)
    with DagsterInstance.local_temp(str(root / "dagster_home")) as instance:
        yield {
            "root": root / "data",
            "resources": _pipeline_resources(root, "http://127.0.0.1:9"),
            "instance": instance,
            "curated": built_pipeline.curated,
            "final": built_pipeline.final,
        }


PIPELINE_TITLE_KEY, PIPELINE_PERSON_KEY = "tt0000001-tt0000050", "nm0000001-nm0000050"


@dataclass(frozen=True)
class BuiltPipeline:
    root: Path
    curated: Any  # ExecuteInProcessResult of the curation run
    final: Any  # ExecuteInProcessResult of the export run, with the export's checks


def _pipeline_resources(root: Path, base_url: str) -> dict:
    from mpds_pipeline.defs.resources import DataDirResource, ImdbClientResource, ModelsResource, SourcesResource

    return {
        "imdb": ImdbClientResource(base_url=base_url, rate_per_second=50, backoff_base_s=0.05),
        "data_dir": DataDirResource(path=str(root / "data")),
        "sources": SourcesResource(page_sources=["live"]),  # the sample server stands in for live IMDb
        "models": ModelsResource(blip2=str(root / "tiny-blip2"), device="cpu"),
    }
