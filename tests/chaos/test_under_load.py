"""The shipped failover scenarios under load: 100 requests/s of mixed traffic (streaming and not,
short and long answers) while one of two deployments dies, hangs, turns 10x slower or answers 503
to half its requests. No client may see an error. (The latency claims of the same scenarios are
measured by benchmarks/failover.py.)"""

from __future__ import annotations

import pytest

from interlock.chaos import Scenario, load_scenario, run_fleet_drill
from interlock.chaos.loading import resolve_scenario


def short(name: str) -> Scenario:
    """The shipped scenario with shorter phases (the rate and the mix stay)."""
    scenario = load_scenario(resolve_scenario(name))
    phases = {"baseline": 2.0, "fault": 4.0, "recovery": 2.0 if scenario.phases.recovery else 0.0}
    actions = [a.model_dump() for a in scenario.actions]
    return scenario.with_overrides(phases=phases, actions=actions)


@pytest.mark.parametrize(
    "name", ["kill-under-load", "hang-under-load", "slow-under-load", "half-503-under-load"]
)
def test_no_client_sees_an_error(name: str) -> None:
    scenario = short(name)
    report = run_fleet_drill(scenario)
    assert report.total.requests == round(scenario.rps * scenario.phases.total_s)
    assert report.total.errors == 0, dict(report.total.errors_by_kind)
    fault = next(p for p in report.phases if p.name == "fault")
    answered = dict(fault.answered_by)
    # the fault was real: the broken deployment answered (almost) nothing while it lasted
    broken = [n for d, n in answered.items() if "sim-a" in d]
    assert sum(broken) <= 0.2 * fault.ok, answered
