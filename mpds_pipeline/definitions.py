"""The one Definitions object of the code location."""

from dagster import Definitions

from .assets.ablations import swap_ablations
from .assets.actor_photos import actor_photos
from .assets.automation import automation_assets, automation_jobs, automation_schedules, automation_sensors
from .assets.captions import poster_prompts, rectifications, rectifications_sensor, vision_prompts
from .assets.crawl import crawl_assets
from .assets.curation import actor_images, actors, build_export_asset, dataset_statistics, movies, poster_images
from .assets.freshness import freshness_schedules, freshness_sensors, imdb_index
from .assets.generation import generation_assets
from .assets.jobs import named_jobs
from .assets.near_duplicates import near_duplicates
from .assets.omdb import omdb_titles
from .assets.pools import pool_sensors
from .assets.wikimedia import wikimedia
from .executor import slot_reclaiming_executor
from .resources import DataDirResource, ImdbClientResource, ModelsResource, SourcesResource
from .scaling import scaling_jobs

export = build_export_asset(
    [movies, poster_images, actors, actor_images, actor_photos, poster_prompts, near_duplicates]
)

defs = Definitions(
    assets=[
        imdb_index,
        *automation_assets,
        *crawl_assets,
        omdb_titles,
        movies,
        actors,
        poster_images,
        actor_images,
        actor_photos,
        dataset_statistics,
        wikimedia,
        vision_prompts,
        rectifications,
        poster_prompts,
        near_duplicates,
        export,
        *generation_assets,
        swap_ablations,
    ],
    jobs=[*named_jobs, *scaling_jobs, *automation_jobs],
    schedules=[*freshness_schedules, *automation_schedules],
    sensors=[*freshness_sensors, *automation_sensors, rectifications_sensor, *pool_sensors],
    executor=slot_reclaiming_executor,
    resources={
        "imdb": ImdbClientResource(),
        "sources": SourcesResource(),
        "data_dir": DataDirResource(),
        "models": ModelsResource(),
    },
)
