"""Where everything lives under the data directory (``$MPDS_DATA_DIR``, default ./data).

Every name of a file or folder of the pipeline's data is here, once: the stages, the
review page, the demo and the CLI ask this module for a path and never build one.
One name for one thing: the asset ``title_records`` writes under ``crawl/title_records``.

A folder that holds several files of its own has a small layout of its own (a crawl
partition's pages, an image folder with its manifest, the index, the export, the
benchmark's outputs), so its writer and every reader agree on the names. The files a
model library names itself (a LoRA's ``pytorch_lora_weights.safetensors``, a saved
model's ``config.json``) are the library's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

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


def image_file_name(item_id: int, variant: int = 1) -> str:
    """A downloaded image: ``<id>.jpg`` for the page's own image, ``<id>_<n>.jpg`` for
    further photos of the same id (actors)."""
    return f"{item_id}.jpg" if variant == 1 else f"{item_id}_{variant}.jpg"


def crop_file_name(actor_id: int, rank: int) -> str:
    """An actor's face crop, ``rank`` 1 the best (the same name in images/ and the export)."""
    return f"{actor_id}_{rank}.jpg"


@dataclass(frozen=True)
class PagesFolder:
    """One crawl partition: the WARC archive, one outcome per attempted id, the lock."""

    path: Path

    @property
    def archive(self) -> Path:
        return self.path / "pages.warc.gz"

    @property
    def outcomes(self) -> Path:
        return self.path / "outcomes.parquet"

    @property
    def lock(self) -> Path:
        """Held (flock) by the crawl of this partition; its text names the holder."""
        return self.path / "crawl.lock"

    @property
    def captures(self) -> Path:
        """Common Crawl captures of this partition's ids listed ahead by the bulk mode
        (sources/bulk.py); when present the crawl does not ask the CDX index."""
        return self.path / "captures.parquet"


@dataclass(frozen=True)
class OmdbFolder:
    """One title partition's OMDb answers: every answer as received (the key redacted),
    and the records parsed from them."""

    path: Path

    @property
    def answers(self) -> Path:
        """JSON lines, one per answered request: redacted URL, answer, time (re-parsed offline)."""
        return self.path / "answers.jsonl"

    @property
    def records(self) -> Path:
        return self.path / "omdb.parquet"

    @property
    def lock(self) -> Path:
        """Held while a run asks OMDb for this partition."""
        return self.path / "omdb.lock"


@dataclass(frozen=True)
class ImageFolder:
    """Downloaded images (``image_file_name``) and their manifest, one row per image."""

    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.parquet"

    @property
    def manifest_lock(self) -> Path:
        return self.path / ".manifest.lock"

    @property
    def download_settings(self) -> Path:
        """Whether the last download into this folder honoured AI opt-out signals."""
        return self.path / "download_settings.json"

    def image(self, item_id: int, variant: int = 1) -> Path:
        return self.path / image_file_name(item_id, variant)


@dataclass(frozen=True)
class IndexFolder:
    """IMDb's dataset files as downloaded (``raw/``), their Parquet tables and the record
    of what they were built from."""

    path: Path

    @property
    def raw_dir(self) -> Path:
        return self.path / "raw"

    @property
    def manifest(self) -> Path:
        return self.path / "index.json"

    def table(self, name: str) -> Path:
        """``titles``, ``names`` or ``principals``."""
        return self.path / f"{name}.parquet"


def download_record_file(path: Path) -> Path:
    """Beside a downloaded dataset file: what it was when fetched (ETag, Last-Modified,
    size), so an unchanged file is not downloaded again."""
    return Path(path).with_name(Path(path).name + ".meta.json")


@dataclass(frozen=True)
class StatsFolder:
    """The paper's Fig. 2 for the curated movies."""

    path: Path

    @property
    def genres_plot(self) -> Path:
        return self.path / "genres.png"

    @property
    def record_types_plot(self) -> Path:
        return self.path / "record_types.png"

    @property
    def missing_plot(self) -> Path:
        return self.path / "missing.png"

    @property
    def markdown(self) -> Path:
        return self.path / "stats.md"


# The release's three tables, each a CSV in the paper's format with a typed Parquet beside it.
RELEASE_TABLES = ("meta", "posters", "actors")


@dataclass(frozen=True)
class ExportFolder:
    """The MPDS release: the paper's CSVs with Parquet beside them, the posters/
    imagefolder, the actor photos and face crops, the statistics."""

    path: Path

    def csv(self, table: str) -> Path:
        """``meta``, ``posters`` or ``actors`` (RELEASE_TABLES), in the paper's format."""
        return self.path / f"{table}.csv"

    def parquet(self, table: str) -> Path:
        return self.path / f"{table}.parquet"

    @property
    def meta_csv(self) -> Path:
        return self.csv("meta")

    @property
    def posters_csv(self) -> Path:
        return self.csv("posters")

    @property
    def actors_csv(self) -> Path:
        return self.csv("actors")

    @property
    def posters_dir(self) -> Path:
        """The imagefolder that Hugging Face ``datasets`` and diffusers read as it is."""
        return self.path / "posters"

    @property
    def posters_metadata(self) -> Path:
        return self.posters_dir / "metadata.jsonl"

    def poster_file_name(self, movie_id: int) -> str:
        return image_file_name(movie_id)

    def poster(self, movie_id: int) -> Path:
        return self.posters_dir / self.poster_file_name(movie_id)

    @property
    def actors_dir(self) -> Path:
        return self.path / "actors"

    @property
    def actor_photos_csv(self) -> Path:
        return self.path / "actor_photos.csv"

    @property
    def actor_photos_parquet(self) -> Path:
        return self.path / "actor_photos.parquet"

    @property
    def actor_photos_dir(self) -> Path:
        return self.path / "actor_photos"

    @property
    def actor_photos_metadata(self) -> Path:
        """The crops' imagefolder metadata (file_name, actor_id, rank, source, caption)."""
        return self.actor_photos_dir / "metadata.jsonl"

    @property
    def attribution_csv(self) -> Path:
        """Per exported Wikimedia image: author, licence, source page (publishable as is)."""
        return self.path / "attribution.csv"

    @property
    def dataset_card(self) -> Path:
        """The Hugging Face dataset card (YAML front matter + Markdown)."""
        return self.path / "README.md"

    def actor_photo_file_name(self, actor_id: int, rank: int) -> str:
        """Relative to the export (``actor_photos.csv``'s ``file_name``)."""
        return f"{self.actor_photos_dir.name}/{crop_file_name(actor_id, rank)}"

    @property
    def provenance(self) -> Path:
        """One row per exported page, poster and actor photo: where it came from."""
        return self.path / "provenance.parquet"

    @property
    def stats(self) -> StatsFolder:
        return StatsFolder(self.path / "stats")


@dataclass(frozen=True)
class RectificationsFolder:
    """Where reviewers drop corrections (CSV or Label Studio JSON) and ``mpds review`` saves."""

    path: Path

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    def review_save(self, stamp: str, movie_id: int, token: str) -> Path:
        """One save of the review page: never overwritten, read back by name order."""
        return self.path / f"review-{stamp}-{movie_id}-{token}.csv"


@dataclass(frozen=True)
class CaptionControlsFolder:
    """Per benchmark prompt: the canny control, the sketch it came from, and the layout
    (where the title and each name are drawn)."""

    path: Path

    def canny(self, item_id: str) -> Path:
        return self.path / f"{item_id}.png"

    def sketch(self, item_id: str) -> Path:
        return self.path / f"{item_id}_sketch.png"

    def layout(self, item_id: str) -> Path:
        return self.path / f"{item_id}.json"

    @property
    def index(self) -> Path:
        return self.path / "controls.json"


@dataclass(frozen=True)
class BenchmarkImagesFolder:
    """``<method>/<prompt_id>.png`` per generation method, and the manifest of them all."""

    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.csv"

    def method_dir(self, folder_name: str) -> Path:
        return self.path / folder_name

    def image(self, folder_name: str, prompt_id: str) -> Path:
        return self.method_dir(folder_name) / f"{prompt_id}.png"


@dataclass(frozen=True)
class LoraFolder:
    """The LoRA stage's output; its weights and checkpoints are named by lora_training."""

    path: Path

    @property
    def train_ids(self) -> Path:
        """The movie ids the LoRA trained on: the benchmark holds them out."""
        return self.path / "train_ids.json"


@dataclass(frozen=True)
class ReportFolder:
    """The paper's Table 1 and its inputs, as files."""

    path: Path

    @property
    def table_csv(self) -> Path:
        return self.path / "benchmark_table.csv"

    @property
    def table_markdown(self) -> Path:
        return self.path / "benchmark_table.md"

    @property
    def preference_csv(self) -> Path:
        return self.path / "benchmark_preference.csv"

    @property
    def grid(self) -> Path:
        return self.path / "benchmark_grid.png"

    @property
    def report_json(self) -> Path:
        return self.path / "benchmark_report.json"

    @property
    def per_image_csv(self) -> Path:
        return self.path / "per_image_scores.csv"


@dataclass(frozen=True)
class SwapsFolder:
    """Fig. 5: one PNG per grid, its cells' images, and the cells table."""

    path: Path

    def grid(self, name: str) -> Path:
        return self.path / f"{name}.png"

    def cell(self, grid: str, column: int) -> Path:
        return self.path / grid / f"{column:02d}.png"

    @property
    def cells_csv(self) -> Path:
        return self.path / "cells.csv"


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
