"""Shared fixtures. Tests run offline: no hub lookups, no telemetry."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# Partitions are fixed when the code location loads: give in-process tests small ones.
os.environ.setdefault("MPDS_TITLE_IDS", "1-200")
os.environ.setdefault("MPDS_PERSON_IDS", "1-200")
os.environ.setdefault("MPDS_PARTITION_SIZE", "50")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only real IMDb samples beside the checkout; skip when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"real IMDb samples not found at {SHARED_DIR} (../shared beside the repo)")
    return SHARED_DIR


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random SD1.5-shaped models (UNet, VAE, CLIP text encoder, ControlNet, CLIP),
    built once per test session and loaded by path like the real ones."""
    from mpds_pipeline.vision.tiny_sd import ensure_tiny_models

    return ensure_tiny_models(tmp_path_factory.getbasetemp() / "tiny_models")


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch) -> Path:
    """A throwaway DAGSTER_HOME with the project's instance config (SQLite, no telemetry)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """Materialise every stage up to the export once (in process, sample server, tiny
    BLIP-2); tests inspect the result and add corrections for their own posters."""
    from dagster import DagsterInstance, materialize

    from mpds_pipeline.assets.actor_photos import actor_photos
    from mpds_pipeline.assets.captions import poster_prompts, rectifications, vision_prompts
    from mpds_pipeline.assets.crawl import person_assets, title_assets
    from mpds_pipeline.assets.curation import actor_images, actors, dataset_statistics, movies, poster_images
    from mpds_pipeline.definitions import export
    from mpds_pipeline.resources import DataDirResource, ImdbClientResource, ModelsResource
    from mpds_pipeline.sample_server import SampleImdbServer
    from mpds_pipeline.vision.tiny_blip2 import save_tiny_blip2

    TITLE_KEY, PERSON_KEY = "tt0000001-tt0000050", "nm0000001-nm0000050"

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

        def run(assets, partition=None):
            result = materialize(assets, partition_key=partition, resources=resources, instance=instance)
            assert result.success
            return result

        run(title_assets, TITLE_KEY)
        run(person_assets, PERSON_KEY)
        curated = run([movies, actors, actor_images, actor_photos, dataset_statistics])
        run([poster_images, vision_prompts], TITLE_KEY)
        final = run([rectifications, poster_prompts, export])
    return {"root": root / "data", "resources": resources, "instance": instance, "final": final, "curated": curated}
