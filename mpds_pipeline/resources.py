"""Dagster resources: the IMDb client settings, the data directory, model locations.

Defaults come from the environment (see ``settings.py``); each field can also be set in
the launchpad's resource config for one run.
"""
from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from . import settings
from .layout import DataLayout, default_data_dir


class DataDirResource(ConfigurableResource):
    """Where every stage reads and writes (``$MPDS_DATA_DIR``, default ./data)."""

    path: str = Field(default_factory=lambda: str(default_data_dir()))

    @property
    def layout(self) -> DataLayout:
        return DataLayout(Path(self.path).resolve())


class ImdbClientResource(ConfigurableResource):
    """Politeness and fault handling of every request to IMDb and its image CDN."""

    base_url: str = Field(default_factory=settings.base_url)
    rate_per_second: float = Field(default_factory=lambda: settings.env_float("MPDS_RATE", 1.0))
    concurrency: int = Field(default_factory=lambda: settings.env_int("MPDS_CONCURRENCY", 4))
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_base_s: float = Field(default_factory=lambda: settings.env_float("MPDS_BACKOFF_BASE_S", 1.0))
    backoff_max_s: float = 60.0
    max_consecutive_blocks: int = 5
    archive_mode: str = Field(
        default_factory=lambda: settings.env_str("MPDS_ARCHIVE_MODE", "full"),
        description="'full' keeps whole pages in the WARC archive, 'data' only their data scripts",
    )
    extra_allowed_hosts: list[str] = ["m.media-amazon.com", "ia.media-imdb.com", "images-na.ssl-images-amazon.com"]
    obey_robots: bool = True

    def client_settings(self):
        from .imdb.client import ClientSettings

        return ClientSettings(
            base_url=self.base_url,
            rate_per_second=self.rate_per_second,
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            extra_allowed_hosts=tuple(self.extra_allowed_hosts),
            obey_robots=self.obey_robots,
        )
