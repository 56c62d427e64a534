"""The one Definitions object of the code location."""

from dagster import Definitions

from .defs.assets.ablations import swap_ablations
from .defs.assets.actor_photos import actor_photos
from .defs.assets.automation import automation_assets, automation_jobs, automation_schedules, automation_sensors
from .defs.assets.captions import poster_prompts, rectifications, rectifications_sensor, vision_prompts
from .defs.assets.crawl import crawl_assets
from .defs.assets.curation import actor_images, actors, build_export_asset, dataset_statistics, movies, poster_images
from .defs.assets.freshness import freshness_schedules, freshness_sensors, imdb_index
from .defs.assets.generation import generation_assets
from .defs.assets.near_duplicates import near_duplicates
from .defs.assets.omdb import omdb_titles
from .defs.assets.pools import pool_sensors
from .defs.assets.wikimedia import wikimedia
from .defs.executor import slot_reclaiming_executor
from .defs.jobs import named_jobs
from .defs.resources import DataDirResource, ImdbClientResource, ModelsResource, SourcesResource
from .defs.scaling import scaling_jobs

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
