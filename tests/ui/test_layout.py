"""Pure pieces of the dashboard: the section registry, the waterfall layout, number formatting and
chart windows — no browser needed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from interlock.core.context import MASTER, Principal
from interlock.ui import OPERATOR, Section, SectionContext, Viewer, default_registry
from interlock.ui.charts import chart, per_second, series, time_window
from interlock.ui.format import compact, compliance_level, ms, pct, usd
from interlock.ui.waterfall import waterfall

MASTER = Viewer(MASTER, "csrf")
TENANT = Viewer(Principal(key_id="key_a", name="tenant", roles=("admin", "operator")), "csrf")


async def _data(ctx: SectionContext) -> Mapping[str, Any]:
    return {}


def test_builtin_sections_in_navigation_order() -> None:
    registry = default_registry()
    assert [s.path for s in registry] == ["overview", "deployments", "spend", "requests", "audit"]
    assert [s.path for s in registry.visible_to(TENANT)] == ["overview", "deployments", "spend", "requests"]
    assert len(registry.visible_to(MASTER)) == 5


def test_a_new_section_plugs_in() -> None:
    registry = default_registry()
    registry.add(Section(path="rollouts", title="Rollouts", template="rollouts.html", data=_data, order=50))
    assert [s.path for s in registry][4] == "rollouts"
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Section(path="rollouts", title="Again", template="x.html", data=_data))


@pytest.mark.parametrize("path", ["", "api", "static", "login", "Rollouts", "a/b", "x y"])
def test_bad_section_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="section path"):
        Section(path=path, title="X", template="x.html", data=_data)


def test_a_detail_page_needs_both_function_and_template() -> None:
    with pytest.raises(ValueError, match="both detail and detail_template"):
        Section(path="runs", title="Runs", template="runs.html", data=_data, detail_template="run.html")


def test_stored_roles_do_not_make_a_virtual_key_an_operator() -> None:
    assert MASTER.has_role(OPERATOR) and MASTER.can_operate and MASTER.scope_key_id is None
    assert not TENANT.has_role(OPERATOR) and not TENANT.can_operate
    assert TENANT.scope_key_id == "key_a"


def test_waterfall_lays_retries_end_to_end() -> None:
    layout = waterfall(
        {
            "latency_ms": 60.0,
            "ttft_ms": 30.0,
            "status": 200,
            "attempts": [
                {"deployment": "a", "outcome": "upstream_unavailable", "latency_ms": 10.0},
                {"deployment": "b", "outcome": "ok", "latency_ms": 45.0},
            ],
        }
    )
    rows = layout["rows"]
    assert [(r["label"], r["start_ms"], r["duration_ms"], r["level"]) for r in rows] == [
        ("request", 0.0, 60.0, "good"),
        ("#1 a", 0.0, 10.0, "bad"),
        ("#2 b", 10.0, 45.0, "good"),
    ]
    assert layout["span_ms"] == 60.0
    assert [t["ms"] for t in layout["ticks"]] == [0, 20, 40, 60]
    assert layout["ttft_pct"] == pytest.approx(50.0)
    assert layout["approximate"] is True


def test_waterfall_uses_recorded_starts_and_aligns_hedges_on_their_ends() -> None:
    exact = waterfall(
        {
            "latency_ms": 100.0,
            "status": 200,
            "attempts": [
                {"deployment": "a", "outcome": "cancelled", "latency_ms": 90.0, "start_ms": 0.0},
                {"deployment": "b", "outcome": "ok", "latency_ms": 40.0, "start_ms": 50.0},
            ],
        }
    )
    assert [r["start_ms"] for r in exact["rows"]] == [0.0, 0.0, 50.0]
    assert exact["approximate"] is False and exact["rows"][1]["level"] == "muted"
    hedged = waterfall(
        {
            "latency_ms": 100.0,
            "status": 200,
            "extra": {"hedged": True},
            "attempts": [
                {"deployment": "b", "outcome": "ok", "latency_ms": 40.0},
                {"deployment": "a", "outcome": "cancelled", "latency_ms": 90.0},
            ],
        }
    )
    assert [r["start_ms"] for r in hedged["rows"][1:]] == [50.0, 0.0]


def test_waterfall_of_a_request_that_never_reached_an_upstream() -> None:
    layout = waterfall({"latency_ms": 0.0, "status": 401, "error_kind": "invalid_api_key", "attempts": []})
    assert [r["outcome"] for r in layout["rows"]] == ["invalid_api_key"]
    assert layout["rows"][0]["width_pct"] > 0


def test_formatting() -> None:
    assert (ms(None), ms(0), ms(0.42), ms(42.4), ms(1234), ms(65_000)) == (
        "–",
        "0 ms",
        "0.4 ms",
        "42 ms",
        "1.23 s",
        "65.0 s",
    )
    assert (usd(0), usd(12.345), usd(0.042), usd(0.000123)) == ("$0.00", "$12.35", "$0.042", "$0.00012")
    assert (pct(0.9512), compact(1234), compact(2_500_000)) == ("95.1 %", "1.2k", "2.5M")
    assert [compliance_level(v) for v in (None, 0.96, 0.95, 0.92, 0.899)] == [
        "none",
        "good",
        "good",
        "warn",
        "bad",
    ]


def test_chart_windows_shrink_to_a_young_gateway_and_skip_a_fresh_bucket() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert time_window(now, None, longest_s=900) == (now - timedelta(seconds=900), 10)
    since, bucket = time_window(now, now - timedelta(seconds=10), longest_s=900)
    assert (since, bucket) == (now - timedelta(seconds=30), 1)
    assert per_second(10, 0.4, 15) is None and per_second(10, 8, 15) == 1.25
    spec = chart("line", [now], [series("x", [None]), series("y", [2.0])])
    assert spec["points"] == 1 and spec["x"] == [now.timestamp()]
