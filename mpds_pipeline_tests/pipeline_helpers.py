"""Shared steps for tests that use the ``pipeline`` fixture (each test's own copy, see conftest)."""

from __future__ import annotations

from dagster import Definitions, RunRequest, SkipReason, build_sensor_context


def remerge_via_sensor(pipeline) -> None:
    """Evaluate the rectifications sensor like the daemon would, run what it requests,
    and check that a second evaluation (same files) requests nothing."""
    from mpds_pipeline.definitions import export
    from mpds_pipeline.defs.assets.captions import poster_prompts, rectifications, rectifications_sensor, vision_prompts
    from mpds_pipeline.defs.assets.crawl import person_assets, title_assets
    from mpds_pipeline.defs.assets.curation import actor_images, actors, movies, poster_images
    from mpds_pipeline.defs.assets.near_duplicates import near_duplicates
    from mpds_pipeline.defs.jobs import export_job

    resources, instance = pipeline["resources"], pipeline["instance"]
    context = build_sensor_context(instance=instance, resources={"data_dir": resources["data_dir"]})
    request = rectifications_sensor(context)
    assert isinstance(request, RunRequest)
    again = build_sensor_context(
        instance=instance, resources={"data_dir": resources["data_dir"]}, cursor=context.cursor
    )
    assert isinstance(rectifications_sensor(again), SkipReason)

    defs = Definitions(
        assets=[
            *title_assets,
            *person_assets,
            movies,
            actors,
            poster_images,
            actor_images,
            vision_prompts,
            rectifications,
            poster_prompts,
            near_duplicates,
            export,
        ],
        jobs=[export_job],
        resources=resources,
    )
    result = defs.resolve_job_def(export_job.name).execute_in_process(instance=instance)
    assert result.success
