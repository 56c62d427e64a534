"""Data rules as asset check results that come with the materialisation they check.

The rules are core functions returning ``rules.RuleResult``; an asset declares its
checks in ``check_specs`` and returns their results in its ``MaterializeResult``, so a
partition is checked as it is written (no separate step rescans every partition).
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity

from ..base.rules import RuleResult

SEVERITY = {"error": AssetCheckSeverity.ERROR, "warn": AssetCheckSeverity.WARN}


def check_result(rule: RuleResult) -> AssetCheckResult:
    """One rule, one check of the same name."""
    return AssetCheckResult(
        check_name=rule.name,
        passed=rule.passed,
        severity=SEVERITY[rule.severity],
        description=None if rule.passed else rule.description,
        metadata={k: v for k, v in rule.details.items() if v not in (None, "")},
    )


def contract_result(check_name: str, rules: list[RuleResult]) -> AssetCheckResult:
    """Several rules as one check: passed when all pass, one metadata line per rule."""
    failed = [r for r in rules if not r.passed]
    return AssetCheckResult(
        check_name=check_name,
        passed=not failed,
        severity=SEVERITY["error" if any(r.severity == "error" for r in failed) or not failed else "warn"],
        description="; ".join(r.description for r in failed) or None,
        metadata={r.name: f"{'pass' if r.passed else 'FAIL'}: {r.description} {r.details or ''}"[:500] for r in rules},
    )
