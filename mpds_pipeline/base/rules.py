"""A data rule's verdict, as the core gives it: the Dagster layer turns it into an asset
check result that comes with the materialisation it checks (``defs/checks.py``).

The rules themselves live beside the data they check: one status per attempted id
(``imdb.crawl.one_status_per_id``), unique record ids (``imdb.record_store.unique_ids``),
the export's release contract (``curate.export_checks.check_export``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# How bad a failed rule is: "error" (the data is wrong) or "warn" (it is incomplete, and
# a rerun may complete it).
Severity = Literal["error", "warn"]


@dataclass
class RuleResult:
    name: str
    passed: bool
    description: str
    details: dict[str, Any] = field(default_factory=dict)
    severity: Severity = "error"


def id_preview(ids: list[int], limit: int = 50) -> str:
    """``"3, 7, 12 (+40 more)"``: ids for a metadata entry, the first ``limit`` of them."""
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")
