"""The small layouts of folders that hold several files of their own.

A crawl partition's pages, an image folder with its manifest, the index, the export,
the benchmark's outputs: each is a frozen dataclass over the folder's path, so its writer
and every reader agree on the file names inside it. Where each folder sits under the
data directory is layout.py's (``DataLayout``); the files a model library names itself
(a LoRA's ``pytorch_lora_weights.safetensors``) are the library's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
