"""Distributed execution: the crawl as a job whose steps run on Celery workers.

``crawl_backfill_celery`` runs the title crawl with dagster-celery's executor, while the
``imdb_requests`` pool keeps the politeness budget global. dagster-celery is an optional
extra: without it the job list is empty. Settings and deployment: docs/scale-out.md and
docs/configuration.md.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from ..base import settings

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def celery_broker_url() -> str:
    return settings.env_str("MPDS_CELERY_BROKER", DEFAULT_BROKER)


def celery_backend_url() -> str:
    return settings.env_str("MPDS_CELERY_BACKEND", celery_broker_url())


def celery_executor_config() -> dict:
    """The executor config; workers must be started with the same broker and backend."""
    return {"broker": celery_broker_url(), "backend": celery_backend_url()}


def build_scaling_jobs() -> list:
    try:
        from dagster_celery import celery_executor
    except ImportError:  # the `scale` extra is not installed
        return []
    crawl_backfill_celery_job = define_asset_job(
        "crawl_backfill_celery",
        selection=AssetSelection.assets("title_pages", "title_records"),
        executor_def=celery_executor.configured(celery_executor_config(), name="celery"),
        description="The title crawl with each step on a Celery worker: backfill it to spread "
        "partitions over workers; the imdb_requests pool keeps the request rate global.",
    )
    return [crawl_backfill_celery_job]


scaling_jobs = build_scaling_jobs()
