"""Pin the public surface of the counting engine (budgets, rate limits, counters)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "interlock.governance.budgets": {
        "DEFAULT_THRESHOLDS",
        "Budget",
        "BudgetEngine",
        "BudgetLevel",
        "Granted",
        "HardLimitAction",
        "RefusalReason",
        "Refused",
        "Reservation",
        "ThresholdCrossed",
    },
    "interlock.governance.ratelimits": {
        "Admitted",
        "LimitKind",
        "LimitLevel",
        "Limited",
        "RateLimit",
        "RateLimiter",
        "Ticket",
        "retry_after_header",
    },
    "interlock.governance.counters": {
        "NO_RESERVATION",
        "AcquireOutcome",
        "BucketLine",
        "BucketState",
        "BudgetLine",
        "BudgetUsage",
        "Counters",
        "CountersUnavailable",
        "LeaseLine",
        "ReserveOutcome",
        "SettleOutcome",
    },
    "interlock.governance.build": {"Governance", "budgets_from_spec", "build_governance", "limits_from_spec"},
    "interlock.governance.health": {"Backend", "SharedStateHealth", "SharedStateMetrics"},
    "interlock.governance.scopes": {
        "ANY",
        "LevelCache",
        "SCOPE_KINDS",
        "Scope",
        "ScopeKind",
        "applicable",
        "key_part",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_members(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PUBLIC[module_name]
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is exported but missing"
