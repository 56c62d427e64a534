"""The one Definitions object of the code location."""
from dagster import AssetSelection, Definitions, define_asset_job

from .assets.captions import poster_prompts, rectification_merge_job, rectifications, rectifications_sensor, vision_prompts
from .assets.crawl import crawl_assets, crawl_checks
from .assets.generation import generation_assets
from .assets.curation import actor_images, actors, build_export_asset, dataset_statistics, movies, poster_images
from .resources import DataDirResource, ImdbClientResource, ModelsResource

export, export_contract = build_export_asset([movies, poster_images, actors, actor_images, poster_prompts])

title_crawl_job = define_asset_job(
    "title_crawl",
    selection=AssetSelection.assets("title_pages", "title_records"),
    description="Crawl and parse one title id range.",
)
person_crawl_job = define_asset_job(
    "person_crawl",
    selection=AssetSelection.assets("person_pages", "person_records"),
    description="Crawl and parse one person id range.",
)

defs = Definitions(
    assets=[
        *crawl_assets,
        movies, actors, poster_images, actor_images, dataset_statistics,
        vision_prompts, rectifications, poster_prompts,
        export,
        *generation_assets,
    ],
    asset_checks=[*crawl_checks, export_contract],
    jobs=[title_crawl_job, person_crawl_job, rectification_merge_job],
    sensors=[rectifications_sensor],
    resources={"imdb": ImdbClientResource(), "data_dir": DataDirResource(), "models": ModelsResource()},
)
