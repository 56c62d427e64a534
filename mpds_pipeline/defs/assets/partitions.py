"""Id-range partitions of the crawl, downloads and captions.

They are dynamic partitions so the crawl can grow past its configured range as IMDb
adds titles: the configured ranges (``MPDS_TITLE_IDS``, ``MPDS_PERSON_IDS``,
``MPDS_PARTITION_SIZE``) are registered by ``mpds ranges`` or, with the daemon running,
by the ``crawl_ranges`` sensor on its first tick; that sensor also appends new ranges
past the highest id seen.
"""

from dagster import DagsterInstance, DynamicPartitionsDefinition, Failure

from ...imdb.partitions import id_ranges, partition_size, person_id_range, title_id_range

TITLE_PARTITIONS = DynamicPartitionsDefinition(name="title_ranges")
PERSON_PARTITIONS = DynamicPartitionsDefinition(name="person_ranges")
PARTITIONS = {"title": TITLE_PARTITIONS, "person": PERSON_PARTITIONS}


def configured_keys(kind: str) -> list[str]:
    first, last = title_id_range() if kind == "title" else person_id_range()
    return [r.key for r in id_ranges(kind, first, last, partition_size())]


def missing_configured_keys(instance: DagsterInstance, kind: str) -> list[str]:
    known = set(instance.get_dynamic_partitions(PARTITIONS[kind].name))
    return [key for key in configured_keys(kind) if key not in known]


def register_configured_ranges(instance: DagsterInstance) -> dict[str, int]:
    """Add the configured id ranges that the instance does not know yet; idempotent."""
    added = {}
    for kind, partitions in PARTITIONS.items():
        missing = missing_configured_keys(instance, kind)
        if missing:
            instance.add_dynamic_partitions(partitions.name, missing)
        added[kind] = len(missing)
    return added


def require_registered(instance: DagsterInstance, kind: str, key: str) -> None:
    """Refuse an id range the instance does not know (a mistyped key, or a range never
    registered): a step that touches the network runs only on a registered range."""
    known = instance.get_dynamic_partitions(PARTITIONS[kind].name)
    if key in known:
        return
    shown = ", ".join(known) if len(known) <= 2 else f"{known[0]} … {known[-1]}"
    raise Failure(
        description=f"{key} is not a registered {kind} id range of this Dagster instance "
        f"({len(known)} registered{': ' + shown if known else ''}). Register the configured ranges (MPDS_TITLE_IDS, "
        "MPDS_PERSON_IDS, MPDS_PARTITION_SIZE) with `mpds ranges`, or add this one in the UI "
        "(the asset's Partitions tab), then run it again."
    )
