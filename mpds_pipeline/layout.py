"""Where every stage writes under the data directory (``$MPDS_DATA_DIR``, default ./data).

One name for one thing: the asset ``title_records`` writes under ``crawl/title_records``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "MPDS_DATA_DIR"


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data")).resolve()


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def settings_file(self) -> Path:
        """Settings that runs over this data directory use (see ``settings.py``)."""
        return self.root / "settings.env"

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance that records this data directory's runs (``mpds ui``, the demo)."""
        return self.root / ".dagster"

    # --- crawl -------------------------------------------------------------------
    def pages_dir(self, kind: str, partition_key: str) -> Path:
        """WARC archive and per-id outcomes of one crawl partition."""
        return self.root / "crawl" / f"{kind}_pages" / partition_key

    def records_file(self, kind: str, partition_key: str) -> Path:
        return self.root / "crawl" / f"{kind}_records" / f"{partition_key}.parquet"

    def records_dir(self, kind: str) -> Path:
        return self.root / "crawl" / f"{kind}_records"

    @property
    def index_dir(self) -> Path:
        """IMDb's non-commercial dataset files and their Parquet index."""
        return self.root / "index"

    # --- curation ----------------------------------------------------------------
    @property
    def curated_dir(self) -> Path:
        return self.root / "curated"

    @property
    def poster_images_root(self) -> Path:
        """The folder of the per-partition poster folders."""
        return self.root / "images" / "posters"

    def poster_images_dir(self, partition_key: str) -> Path:
        return self.poster_images_root / partition_key

    @property
    def actor_images_dir(self) -> Path:
        return self.root / "images" / "actors"

    @property
    def actor_photos_dir(self) -> Path:
        """Strip and gallery photos as downloaded (``<id>_<variant>.jpg``, a manifest)."""
        return self.root / "images" / "actor_photos"

    @property
    def actor_crops_dir(self) -> Path:
        """512x512 head-and-shoulders crops, one per kept actor photo."""
        return self.root / "images" / "actor_crops"

    @property
    def actor_crops_sheet(self) -> Path:
        """A contact sheet of some actors' crops, shown in the UI."""
        return self.root / "images" / "actor_crops_sheet.png"

    # --- captions and prompts ----------------------------------------------------
    def vision_prompts_file(self, partition_key: str) -> Path:
        return self.root / "prompts" / "vision_prompts" / f"{partition_key}.parquet"

    @property
    def rectifications_dir(self) -> Path:
        return self.root / "rectifications"

    @property
    def rectifications_sensor_file(self) -> Path:
        """When the re-merge sensor last looked at rectifications/ (the review page reads it)."""
        return self.root / "status" / "rectifications_sensor.json"

    @property
    def prompts_dir(self) -> Path:
        return self.root / "prompts"

    # --- export and models -------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def benchmark_dir(self) -> Path:
        return self.root / "benchmark"

    @property
    def caption_controls_dir(self) -> Path:
        """Canny controls and caption layouts, ``<prompt_id>.png`` / ``.json``: read by generation."""
        return self.benchmark_dir / "caption_controls"
