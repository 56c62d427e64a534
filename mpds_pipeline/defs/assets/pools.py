"""``imdb_pool_watch``: while a daemon runs (``mpds ui``), frees the ``imdb_requests``
slots of dead runs (pool_slots.py), and tells each step waiting for the slot, in its
run's log at WARNING, which run holds it and how to free it if that run is gone."""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from ..pool_slots import IMDB_POOL, free_dead_slots, slot_holders, waiting_notice


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Frees the {IMDB_POOL} slots of runs whose processes are gone (killed, or the machine "
    "restarted) and tells waiting steps who holds the slot. Sends no request to IMDb.",
)
def imdb_pool_watch(context: SensorEvaluationContext):
    import logging

    instance = context.instance
    freed = free_dead_slots(instance, warn=context.log.warning)
    info = instance.event_log_storage.get_concurrency_info(IMDB_POOL)
    waiting = sorted({step.run_id for step in info.pending_steps if step.assigned_timestamp is None})
    holders = slot_holders(instance) if waiting else []
    told = set(filter(None, (context.cursor or "").split(",")))
    notice = waiting_notice(holders) if holders else ""
    for run_id in waiting:
        key = f"{run_id}:{'+'.join(h.run_id for h in holders)}"
        if holders and key not in told:  # once per waiting run and holder
            level = logging.INFO if all(h.state == "alive" for h in holders) else logging.WARNING
            _log_to_run(instance, run_id, notice, level)
            told.add(key)
    context.update_cursor(",".join(sorted(told)[-200:]))
    return SkipReason(f"freed {len(freed)} slot(s) of dead runs; {len(waiting)} run(s) waiting for {IMDB_POOL}")


def _log_to_run(instance, run_id: str, message: str, level: int) -> None:
    """A plain log line in another run's log (what the UI shows under that run)."""
    import time

    from dagster import EventLogEntry

    run = instance.get_run_by_id(run_id)
    if run is None:
        return
    instance.handle_new_event(
        EventLogEntry(
            error_info=None,
            level=level,
            user_message=message,
            run_id=run_id,
            timestamp=time.time(),
            job_name=run.job_name,
            step_key=None,
            dagster_event=None,
        )
    )


pool_sensors = [imdb_pool_watch]
