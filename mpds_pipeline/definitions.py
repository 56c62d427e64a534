"""The one Definitions object of the code location."""
from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from .assets.crawl import TITLE_PARTITIONS, crawl_assets, crawl_checks
from .resources import DataDirResource, ImdbClientResource

title_crawl_job = define_asset_job(
    "title_crawl",
    selection=AssetSelection.assets("title_pages", "title_records"),
    partitions_def=TITLE_PARTITIONS,
    description="Crawl and parse one title id range.",
)

defs = Definitions(
    assets=[*crawl_assets],
    asset_checks=[*crawl_checks],
    jobs=[title_crawl_job],
    resources={"imdb": ImdbClientResource(), "data_dir": DataDirResource()},
)
