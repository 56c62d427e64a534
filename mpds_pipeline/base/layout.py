"""Where everything lives under the data directory (``$MPDS_DATA_DIR``, default ./data).

Every top-level file and folder of the pipeline's data is named here, once, on
``DataLayout``: the stages, the review page, the demo and the CLI ask it for a path and
never build one. One name for one thing: the asset ``title_records`` writes under
``crawl/title_records``. The files inside a folder of several files are that folder's
own small layout (folders.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from .folders import (
    BenchmarkImagesFolder,
    ExportFolder,
    IndexFolder,
    OmdbFolder,
    PagesFolder,
    RectificationsFolder,
    ReportFolder,
    SwapsFolder,
)

DATA_DIR_ENV = "MPDS_DATA_DIR"
# Which dataset the assets build: ``research`` (IMDb posters, the paper's non-commercial
# research use) or ``licence_clean`` (Commons files under allowlisted licences only). The
# edition's own images, prompts, actor photos and export live in folders of their own
# (``images-licence-clean/``, ``export-licence-clean/`` ...), so building one never
# overwrites the other; the crawl, the index, movies and actors are shared.
Edition = Literal["research", "licence_clean"]
EDITIONS: tuple[Edition, ...] = get_args(Edition)
RESEARCH: Final = "research"
LICENCE_CLEAN: Final = "licence_clean"


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data")).resolve()


def dagster_config_file(dagster_home: Path) -> Path:
    """The instance's configuration in a Dagster home (``mpds`` copies dagster.yaml there)."""
    return Path(dagster_home) / "dagster.yaml"


@dataclass(frozen=True)
class DataLayout:
    root: Path
    edition: Edition = RESEARCH

    def __post_init__(self):
        if self.edition not in EDITIONS:
            raise ValueError(f"unknown edition {self.edition!r}: use one of {EDITIONS}")

    def _edition_name(self, name: str) -> str:
        """``name`` for the research edition, ``name-licence-clean`` for the other."""
        return name if self.edition == RESEARCH else f"{name}-{self.edition.replace('_', '-')}"

    @property
    def settings_file(self) -> Path:
        """Settings that runs over this data directory use (see ``settings.py``)."""
        return self.root / "settings.env"

    @property
    def demo_generation_config(self) -> Path:
        """The demo's run config of the generation chain (tiny models, one process)."""
        return self.root / "demo_generation.yaml"

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance that records this data directory's runs (``mpds ui``, the demo)."""
        return self.root / ".dagster"

    @property
    def paused_hosts_file(self) -> Path:
        """Hosts whose automation is paused (blocked, or out of quota): sources/pauses.py."""
        return self.root / "automation" / "paused_hosts.json"

    # --- crawl -------------------------------------------------------------------
    @property
    def crawl_dir(self) -> Path:
        return self.root / "crawl"

    def pages_root(self, kind: str) -> Path:
        """The folder of one page kind's partitions (``title`` or ``person``)."""
        return self.crawl_dir / f"{kind}_pages"

    def pages_dir(self, kind: str, partition_key: str) -> Path:
        """WARC archive and per-id outcomes of one crawl partition (``PagesFolder``)."""
        return self.pages_root(kind) / partition_key

    def pages(self, kind: str, partition_key: str) -> PagesFolder:
        return PagesFolder(self.pages_dir(kind, partition_key))

    def records_dir(self, kind: str) -> Path:
        return self.crawl_dir / f"{kind}_records"

    def records_file(self, kind: str, partition_key: str) -> Path:
        return self.records_dir(kind) / f"{partition_key}.parquet"

    @property
    def omdb_root(self) -> Path:
        return self.crawl_dir / "omdb_titles"

    def omdb(self, partition_key: str) -> OmdbFolder:
        """``omdb_titles``' folder for one title partition."""
        return OmdbFolder(self.omdb_root / partition_key)

    @property
    def omdb_usage_file(self) -> Path:
        """Requests made to OMDb today, across partitions (the daily quota)."""
        return self.omdb_root / "usage.json"

    @property
    def index_dir(self) -> Path:
        """IMDb's non-commercial dataset files and their Parquet index (``IndexFolder``)."""
        return self.root / "index"

    @property
    def index(self) -> IndexFolder:
        return IndexFolder(self.index_dir)

    # --- curation ----------------------------------------------------------------
    @property
    def curated_dir(self) -> Path:
        return self.root / "curated"

    @property
    def movies_file(self) -> Path:
        return self.curated_dir / "movies.parquet"

    @property
    def movie_decisions_file(self) -> Path:
        """One row per title: kept, or its drop reason."""
        return self.curated_dir / "movie_decisions.parquet"

    @property
    def release_texts_file(self) -> Path:
        """The poster texts of a released posters.csv (``movies`` with source='release')."""
        return self.curated_dir / "release_texts.parquet"

    @property
    def actors_file(self) -> Path:
        return self.curated_dir / "actors.parquet"

    @property
    def poster_hashes_dir(self) -> Path:
        """Perceptual hashes of the posters (id, phash, dhash), one file per title partition."""
        return self.curated_dir / "poster_hashes"

    def poster_hashes_file(self, partition_key: str) -> Path:
        return self.poster_hashes_dir / f"{partition_key}.parquet"

    @property
    def near_duplicates_file(self) -> Path:
        """Every exported-to-be poster's near-duplicate group (curate.near_duplicates)."""
        return self.curated_dir / "near_duplicates.parquet"

    @property
    def movie_actor_file(self) -> Path:
        """Each movie's cast linked to actor ids, in billing order."""
        return self.curated_dir / "movie_actor.parquet"

    @property
    def actor_photos_file(self) -> Path:
        """The kept face crops, one row each (the edition's)."""
        return self.curated_dir / f"{self._edition_name('actor_photos')}.parquet"

    @property
    def actor_photo_decisions_file(self) -> Path:
        """Every candidate photo: kept, or why not (the edition's)."""
        return self.curated_dir / f"{self._edition_name('actor_photo_decisions')}.parquet"

    @property
    def images_dir(self) -> Path:
        """The edition's downloaded images."""
        return self.root / self._edition_name("images")

    # --- Wikimedia ---------------------------------------------------------------
    @property
    def wikimedia_dir(self) -> Path:
        return self.root / "wikimedia"

    @property
    def wikidata_items_file(self) -> Path:
        """Movies and actors found on Wikidata: item, label, poster/image files, category."""
        return self.wikimedia_dir / "wikidata_items.parquet"

    @property
    def commons_files_file(self) -> Path:
        """One row per Commons file asked: licence, author, credit, size, sha1, decision."""
        return self.wikimedia_dir / "commons_files.parquet"

    @property
    def poster_images_root(self) -> Path:
        """The folder of the per-partition poster folders."""
        return self.images_dir / "posters"

    def poster_images_dir(self, partition_key: str) -> Path:
        """One partition's posters with their manifest (``ImageFolder``)."""
        return self.poster_images_root / partition_key

    @property
    def actor_images_dir(self) -> Path:
        return self.images_dir / "actors"

    @property
    def actor_photos_dir(self) -> Path:
        """Strip and gallery photos as downloaded (``<id>_<variant>.jpg``, a manifest)."""
        return self.images_dir / "actor_photos"

    @property
    def actor_crops_dir(self) -> Path:
        """512x512 head-and-shoulders crops, one per kept actor photo."""
        return self.images_dir / "actor_crops"

    @property
    def actor_crops_sheet(self) -> Path:
        """A contact sheet of some actors' crops, shown in the UI."""
        return self.images_dir / "actor_crops_sheet.png"

    # --- captions and prompts ----------------------------------------------------
    @property
    def prompts_dir(self) -> Path:
        """The edition's captions and prompts (captions describe the edition's posters)."""
        return self.root / self._edition_name("prompts")

    @property
    def vision_prompts_dir(self) -> Path:
        return self.prompts_dir / "vision_prompts"

    def vision_prompts_file(self, partition_key: str) -> Path:
        return self.vision_prompts_dir / f"{partition_key}.parquet"

    @property
    def poster_prompts_file(self) -> Path:
        """The integrated text per poster (what posters.csv gets)."""
        return self.prompts_dir / "poster_prompts.parquet"

    @property
    def rectified_file(self) -> Path:
        """The accepted corrections, latest per id."""
        return self.prompts_dir / "rectified.parquet"

    @property
    def rectification_audit_file(self) -> Path:
        return self.prompts_dir / "rectification_audit.parquet"

    @property
    def rectification_rejected_file(self) -> Path:
        return self.prompts_dir / "rectification_rejected.parquet"

    @property
    def rectifications_dir(self) -> Path:
        return self.root / "rectifications"

    @property
    def rectifications(self) -> RectificationsFolder:
        return RectificationsFolder(self.rectifications_dir)

    @property
    def rectifications_sensor_file(self) -> Path:
        """When the re-merge sensor last looked at rectifications/ (the review page reads it)."""
        return self.root / "status" / "rectifications_sensor.json"

    # --- export and models -------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        """``export/`` (research) or ``export-licence-clean/``."""
        return self.root / self._edition_name("export")

    @property
    def export(self) -> ExportFolder:
        return ExportFolder(self.export_dir)

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def lora_dir(self) -> Path:
        """The LoRA weights (diffusers' file name), checkpoints and training ids."""
        return self.models_dir / "lora"

    @property
    def actor_embeddings_dir(self) -> Path:
        """One ``nm<id>.safetensors`` textual-inversion embedding per actor."""
        return self.models_dir / "actor_embeddings"

    @property
    def tiny_diffusion_dir(self) -> Path:
        """The demo's tiny random SD, ControlNet and CLIP (built in code)."""
        return self.models_dir / "tiny-diffusion"

    @property
    def tiny_blip2_dir(self) -> Path:
        """The demo's tiny random BLIP-2."""
        return self.models_dir / "tiny-blip2"

    # --- benchmark ---------------------------------------------------------------
    @property
    def benchmark_dir(self) -> Path:
        return self.root / "benchmark"

    @property
    def benchmark_prompts_file(self) -> Path:
        """The held-out prompts every benchmark method generates for."""
        return self.benchmark_dir / "prompts.json"

    @property
    def caption_controls_dir(self) -> Path:
        """Canny controls and caption layouts (``CaptionControlsFolder``): read by generation."""
        return self.benchmark_dir / "caption_controls"

    @property
    def benchmark_images(self) -> BenchmarkImagesFolder:
        return BenchmarkImagesFolder(self.benchmark_dir / "images")

    @property
    def benchmark_report(self) -> ReportFolder:
        return ReportFolder(self.benchmark_dir / "report")

    @property
    def swaps(self) -> SwapsFolder:
        return SwapsFolder(self.benchmark_dir / "swaps")
