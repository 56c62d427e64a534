"""Distributed execution: the crawl as a job whose steps run on Celery workers.

``crawl_backfill_celery`` is the title crawl (``title_pages`` -> ``title_records``) with
dagster-celery's executor: every step becomes a Celery task on a Redis (or any Celery)
broker, picked up by whichever worker is free. A backfill queues one run per partition.
The politeness budget stays global because ``title_pages`` is in the ``imdb_requests``
pool, limited to one step at a time by the production instance profile
(deploy/dagster.postgres.yaml); the Celery executor claims pool slots before it submits a
step. Partitions are the crawl's id ranges (register them with ``mpds ranges``).
dagster-celery is an optional dependency (the ``scale`` extra): without it the
job list is empty and the code location loads as before.

| variable | default | meaning |
|---|---|---|
| MPDS_CELERY_BROKER | redis://127.0.0.1:6379/0 | the Celery broker the job submits steps to |
| MPDS_CELERY_BACKEND | the broker URL | where workers put step results |
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
