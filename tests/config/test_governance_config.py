"""The redis, budgets and limits sections: a good example loads; every bad value names its field."""

from __future__ import annotations

import pytest

from interlock.config.loader import ConfigError, parse_settings
from interlock.config.schema import Settings
from interlock.governance.build import build_governance
from interlock.governance.fallback import FallbackCounters
from interlock.governance.local_counters import LocalCounters, MemoryStore
from interlock.governance.sqlite_store import SqliteStore

GOOD = """\
redis:
  url: redis://:s3cret-pw@127.0.0.1:6379/0
  prefix: "gw1:"
  fallback_processes: 8
budgets:
  reservation_ttl_s: 600
  max_request_usd: 5
  key_max_request_usd: {k-intern: 0.5}
  rules:
    - {name: company, scope: global, period: month, limit_usd: 20000}
    - {name: acme, scope: org, id: acme, period: month, limit_usd: 5000, action: downgrade}
    - {name: per-team, scope: team, period: week, limit_usd: 200, thresholds_pct: [50, 90]}
    - {name: gpt-search, scope: team, id: search, model: gpt-4o, period: day, limit_usd: 25.5}
limits:
  rules:
    - {scope: key, requests_per_min: 60, tokens_per_min: 100000}
    - {scope: team, id: search, model: gpt-4o, requests_per_min: 10, concurrent: 4}
    - {name: acme-cost, scope: org, id: acme, cost_per_min_usd: 2.5}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, env={})
    return info.value.problems


def test_the_example_loads_and_builds() -> None:
    settings = parse_settings(GOOD, env={})
    assert settings.redis is not None and settings.redis.prefix == "gw1:"
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in settings.redis.shown_url()
    governance = build_governance(settings)
    assert isinstance(governance.counters, FallbackCounters) and governance.counters.share == 1 / 8
    budgets = {b.name: b for b in governance.budgets.budgets}
    assert budgets["gpt-search"].limit == 25_500_000 and budgets["per-team"].thresholds == (50, 90)
    assert budgets["company"].thresholds == (70, 100, 120) and budgets["acme"].action == "downgrade"
    assert governance.budgets.request_cap("k-intern") == 500_000
    assert governance.budgets.request_cap("k-other") == 5_000_000
    limits = {r.name: r for r in governance.limits.limits}
    assert set(limits) == {"key:*", "team:search:gpt-4o", "acme-cost"}
    assert limits["acme-cost"].cost_per_min == 2_500_000


def test_the_backend_follows_workers_when_there_is_no_redis() -> None:
    one = build_governance(Settings())
    assert isinstance(one.counters, LocalCounters) and isinstance(one.counters.store, MemoryStore)
    assert one.health.backend == "memory"
    many = build_governance(Settings.model_validate({"server": {"workers": 4}}))
    assert isinstance(many.counters, LocalCounters) and isinstance(many.counters.store, SqliteStore)
    assert many.health.backend == "sqlite"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "limit_usd: 5000,",
            "limit_usd: 0,",
            "budgets.rules[1].limit_usd (line 11): Input should be greater than 0",
        ),
        (
            "limit_usd: 5000,",
            "limit_usd: -5,",
            "budgets.rules[1].limit_usd (line 11): Input should be greater than 0",
        ),
        (
            "limit_usd: 5000,",
            "limit_usd: 5.0e+12,",
            "budgets.rules[1].limit_usd (line 11): Input should be less",
        ),
        (
            "limit_usd: 5000,",
            "limit_usd: lots,",
            "budgets.rules[1].limit_usd (line 11): Input should be a valid",
        ),
        (
            "period: month, limit_usd: 5000",
            "period: year, limit_usd: 5000",
            "budgets.rules[1].period (line 11): ",
        ),
        ("action: downgrade", "action: refuse", "budgets.rules[1].action (line 11): Input should be 'block'"),
        ("id: acme,", 'id: "",', "budgets.rules[1] (line 11): id: must be a non-empty id"),
        (
            "thresholds_pct: [50, 90]",
            "thresholds_pct: [90, 50]",
            "budgets.rules[2].thresholds_pct (line 12): thresholds must be strictly increasing",
        ),
        (
            "thresholds_pct: [50, 90]",
            "thresholds_pct: [0, 90]",
            "budgets.rules[2].thresholds_pct (line 12): each threshold is a percentage from 1 to 1000",
        ),
        (
            "{name: company, scope: global,",
            "{name: company, scope: global, id: x,",
            "budgets.rules[0] (line 10): id: a global rule applies to everyone; leave id out",
        ),
        ("name: per-team", "name: acme", "budgets (line 5): rules[1].name: 'acme' is used by more than one"),
        (
            "{k-intern: 0.5}",
            "{k-intern: -1}",
            "budgets.key_max_request_usd (line 8): k-intern: must be more than 0",
        ),
        (
            "max_request_usd: 5",
            "max_request_usd: 0",
            "budgets.max_request_usd (line 7): Input should be greater",
        ),
        (
            "reservation_ttl_s: 600",
            "reservation_ttl_s: 0",
            "budgets.reservation_ttl_s (line 6): Input should",
        ),
        ("url: redis://", "url: http://", "redis.url (line 2): must start with redis://"),
        ('prefix: "gw1:"', 'prefix: "gw 1:"', "redis.prefix (line 3): must not contain spaces"),
        ("fallback_processes: 8", "fallback_processes: 0", "redis.fallback_processes (line 4): Input should"),
        (
            "requests_per_min: 60,",
            "requests_per_min: -1,",
            "limits.rules[0].requests_per_min (line 16): Input",
        ),
        ("concurrent: 4", "concurrent: 0", "limits.rules[1].concurrent (line 17): Input should be greater"),
        (
            "cost_per_min_usd: 2.5",
            "cost_per_min_usd: 1e10",
            "limits.rules[2].cost_per_min_usd (line 18): Input",
        ),
        (
            "{name: acme-cost, scope: org, id: acme, cost_per_min_usd: 2.5}",
            "{scope: org}",
            "limits.rules[2] (line 18): set at least one of requests_per_min",
        ),
        (
            "{scope: key, requests_per_min",
            "{scope: team, id: search, model: gpt-4o, requests_per_min",
            "limits (line 14): rules[0]: another limit has the same scope, id and model",
        ),
        ("period: week,", "period: week, limit: 3,", "budgets.rules[2].limit (line 12): unknown key 'limit'"),
    ],
)
def test_bad_values_name_the_field(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1))
    assert len(found) == 1 and found[0].startswith(expected), found
