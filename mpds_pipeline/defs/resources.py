"""Dagster resources: the IMDb client, the other sources, the data directory, the models.

Their fields are derived from the core's settings (settings_models.py); the environment
sets the defaults (base/settings.py), and the launchpad's resource config one run's values.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from ..base import settings
from ..base.layout import EDITIONS, RESEARCH, DataLayout, Edition, default_data_dir
from ..imdb.archive import ArchiveMode
from ..imdb.crawl import MAX_CONSECUTIVE_UNREACHABLE
from ..imdb.ids import configured_base_url
from ..net.client_settings import ClientSettings
from ..sources.archived_pages import ArchiveSettings
from ..sources.wikimedia import WikimediaSettings
from ..vision.model_sources import ModelSources
from .settings_models import ALL, config_fields, derived, to_settings


class DataDirResource(ConfigurableResource):
    """Where every stage reads and writes (``$MPDS_DATA_DIR``, default ./data)."""

    path: str = Field(default_factory=lambda: str(default_data_dir()))
    # Here, not in SourcesResource: the edition chooses the folders every stage writes to.
    edition: Edition = Field(
        default_factory=lambda: settings.env_str("MPDS_EDITION", RESEARCH),
        description=f"which dataset the assets build, one of {EDITIONS}: 'research' (IMDb posters, "
        "non-commercial research) or 'licence_clean' (Commons images under allowlisted licences only, "
        "in folders of its own: images-licence-clean/, export-licence-clean/ ...)",
    )

    @property
    def layout(self) -> DataLayout:
        return DataLayout(Path(self.path).resolve(), self.edition)


class ImdbClientResource(
    derived(
        ConfigurableResource,
        config_fields(
            ClientSettings,
            ["base_url", "rate_per_second", "concurrency", "timeout_s", "max_retries", "backoff_base_s"]
            + ["backoff_max_s", "max_body_bytes", "extra_allowed_hosts", "obey_robots", "contact"],
            # The generic client has no main host; this resource is IMDb's.
            defaults={"base_url": configured_base_url},
        ),
    )
):
    """Politeness and fault handling of every request to IMDb and its image CDN."""

    max_consecutive_blocks: int = 5
    max_consecutive_unreachable: int = Field(
        MAX_CONSECUTIVE_UNREACHABLE,
        description="ids in a row with no HTTP response after retries (no network, wrong base URL) "
        "that stop the crawl; the rest is left for the next run",
    )
    archive_mode: ArchiveMode = Field(
        default_factory=lambda: settings.env_str("MPDS_ARCHIVE_MODE", "full"),
        description="'full' keeps whole pages in the WARC archive, 'data' only their data scripts",
    )
    use_index: bool = Field(True, description="crawl only ids that IMDb's dataset index lists, when the index exists")
    datasets_url: str = Field(
        default_factory=lambda: settings.env_str("MPDS_IMDB_DATASETS_URL", "https://datasets.imdbws.com"),
        description="where IMDb's non-commercial dataset files are downloaded from",
    )

    def client_settings(self) -> ClientSettings:
        return to_settings(ClientSettings, self)

    def crawl_options(self) -> dict:
        """How a page crawl through this client archives and when it stops: the keyword
        arguments that crawl_partition and crawl_galleries share."""
        return {
            "archive_mode": self.archive_mode,
            "max_consecutive_blocks": self.max_consecutive_blocks,
            "max_consecutive_unreachable": self.max_consecutive_unreachable,
        }


class SourcesResource(
    derived(
        ConfigurableResource,
        config_fields(
            ArchiveSettings,
            ["cc_index_url", "cc_data_url", "wayback_url", "crawls", "max_crawls", "policy"]
            + ["index_rate", "data_rate", "wayback_rate"],
        ),
        config_fields(
            WikimediaSettings,
            ["wikidata_url", "sparql_url", "commons_url", "rate_per_second", "allowlist", "thumb_width"],
        ),
    )
):
    """Where pages, metadata and images come from besides live IMDb, and in which order.

    Every endpoint is a setting with an environment variable, so the same code runs
    against the real hosts and against a local replay (the sample server)."""

    page_sources: list[str] = Field(
        default_factory=lambda: settings.env_list("MPDS_PAGE_SOURCES", ["common_crawl", "wayback"]),
        description="page sources a crawl tries in order, each for the ids the ones before lacked: "
        "common_crawl, wayback, live (IMDb itself, which blocks non-browser clients since 2026)",
    )
    omdb_url: str = Field(default_factory=lambda: settings.env_str("MPDS_OMDB_URL", "https://www.omdbapi.com"))
    # The OMDb key is deliberately not a field: resource config shows in the UI and run records.
    omdb_daily_quota: int = Field(
        default_factory=lambda: settings.env_int("MPDS_OMDB_DAILY_QUOTA", 1000),
        description="OMDb requests per UTC day across all partitions (a free key allows 1,000); "
        "the key comes from MPDS_OMDB_API_KEY only",
    )
    omdb_rate_per_second: float = Field(default_factory=lambda: settings.env_float("MPDS_OMDB_RATE", 2.0))

    def wikimedia_settings(self) -> WikimediaSettings:
        return to_settings(WikimediaSettings, self)

    def archive_settings(self, max_page_bytes: int = 10_000_000) -> ArchiveSettings:
        """The archive sources' endpoints and politeness (sources/archived_pages.py)."""
        return to_settings(ArchiveSettings, self, max_page_bytes=max_page_bytes)


class ModelsResource(derived(ConfigurableResource, config_fields(ModelSources, ALL))):
    """Where the models come from: hub ids or local folders (vision/model_sources.py)."""
