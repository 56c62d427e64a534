"""The one module that reaches into Dagster's internals (``dagster._core``).

Dagster's public API has no name for these; each use says why it is needed. Keeping
them here means a Dagster upgrade that moves one breaks (and is fixed in) one place.
"""

from __future__ import annotations


def local_compute_log_manager(instance):
    """The instance's compute-log manager if it keeps logs on this machine's disk, else None.

    Why internal: asset metadata shows images through a URL the webserver already serves
    (``/logs/...``), which needs a file at the local path of a log key
    (``get_captured_local_path``); only ``LocalComputeLogManager`` has one, and the class is
    exported from ``dagster._core`` alone (dagster.yaml names it ``dagster.core.storage``)."""
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    manager = getattr(instance, "compute_log_manager", None)
    return manager if isinstance(manager, LocalComputeLogManager) else None


def is_sqlite_event_log(instance) -> bool:
    """Whether the instance's event log is SQLite, i.e. every run of it runs on this machine.

    Why internal: freeing the pool slot of a dead run trusts a process id only when the
    run ran here; Dagster's public API does not say which storage an instance uses, and
    the SQLite storage classes are exported from ``dagster._core`` alone."""
    from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage, SqliteEventLogStorage

    return isinstance(instance.event_log_storage, (SqliteEventLogStorage, ConsolidatedSqliteEventLogStorage))
