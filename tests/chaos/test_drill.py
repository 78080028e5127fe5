"""Real drills over loopback HTTP: a fleet started from the scenario (simulator processes and
``interlock up``), and a gateway already running with simulators the scenario names by URL.

No bounds on times: the tests check the order of events and counts; how fast detection and
recovery are is measured by benchmarks/failover.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from interlock.chaos import DrillTarget, parse_scenario, run_drill_sync
from interlock.chaos.actions import ActionRunner
from interlock.chaos.monitor import AdminClient
from interlock.chaos.scenario import DisableAction, EnableAction
from interlock.chaos.traffic import new_session
from interlock.cli.main import app
from interlock.sim import SimConfig, SimServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

# Round-robin keeps sending to the killed deployment until its breaker opens, and a short open_s
# lets the breaker probe the restarted one within the drill.
FLEET_DRILL = """
name: kill-and-restart
description: test drill
rps: 40
phases: {baseline: 1s, fault: 1.5s, recovery: 3s}
actions:
  - {at: fault, do: kill, sim: a}
  - {at: recovery, do: restart, sim: a}
fleet:
  simulators: {a: {ttft_ms: 5, tpot_ms: 1}, b: {ttft_ms: 5, tpot_ms: 1, seed: 1}}
  model:
    routing: {strategy: round-robin}
    breaker: {open_s: 0.5, max_open_s: 0.5}
measure: {warmup_s: 0.5, window_s: 0.5}
"""


def test_fleet_drill_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "drill.yaml"
    path.write_text(FLEET_DRILL, encoding="utf-8")
    result = CliRunner().invoke(app, ["chaos", str(path), "--fleet", "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = orjson.loads(result.stdout)
    baseline, fault, recovery, total = report["phases"]
    assert total["requests"] == 220  # 5.5 s at 40 rps, warm-up excluded
    # every request the dead deployment got was retried on the live one: no client saw an error
    assert total["errors"] == 0, total["errors_by_kind"]
    assert fault["fallbacks"] >= 1
    assert fault["answered_by"] == {"chat/sim-b/sim-small#1": fault["requests"]}
    assert [a["do"] for a in report["actions"]] == ["kill", "restart"]
    assert all(a["ok"] for a in report["actions"])
    assert report["monitored"] is True
    assert report["watched"] == ["chat/sim-a/sim-small#0"]
    assert report["detected_deployment"] == "chat/sim-a/sim-small#0"
    # the breaker was seen open while the deployment was still down, before the restart
    detected = report["time_to_detect_s"]
    assert detected is not None and report["injection_s"] + detected < report["removal_s"]
    assert baseline["p99_ms"] > 0 and report["p99_limit_ms"] == pytest.approx(1.5 * baseline["p99_ms"], 0.01)
    # the restarted simulator is probed, its breaker closes and it takes traffic again
    assert report["removal_s"] > report["injection_s"]
    assert report["serving_again_s"] is not None
    assert report["breaker_closed_s"] is not None
    assert "chat/sim-a/sim-small#0" in recovery["answered_by"]
    # p99 back within 1.5x baseline depends on the machine's noise: only its consistency is checked
    recovered = report["time_to_recover_s"]
    assert recovered is None or recovered >= report["breaker_closed_s"]


@pytest.fixture
def two_sims() -> Iterator[tuple[SimServerThread, SimServerThread]]:
    config = SimConfig(ttft_ms=2, tpot_ms=0.5, prefill_ms_per_token=0.0)
    with SimServerThread(config, name="a") as a, SimServerThread(config, name="b", seed=1) as b:
        yield a, b


@pytest.fixture
def gateway(two_sims: tuple[SimServerThread, SimServerThread], tmp_path: Path) -> Iterator[Gateway]:
    a, b = two_sims
    # round-robin: both replicas take every other request, so each phase's split is known
    config = f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp_path}/interlock.db
providers:
  sim-a: {{kind: openai, base_url: {a.base_url}}}
  sim-b: {{kind: openai, base_url: {b.base_url}}}
models:
  chat:
    routing: {{strategy: round-robin}}
    deployments:
      - {{provider: sim-a, model: sim-small}}
      - {{provider: sim-b, model: sim-small}}
"""
    with running_gateway(config) as gw:
        yield gw


EXTERNAL_DRILL = """
name: errors-on-a
rps: 25
phases: {baseline: 0.6s, fault: 1.6s, recovery: 0.4s}
actions:
  - {at: fault, do: fault, sim: a, faults: {error_rate: 1, error_status: 500}}
  - {at: recovery, do: clear, sim: a}
measure: {warmup_s: 0.3, quiet_s: 0.5}
"""


def test_external_drill_without_master_key_uses_what_clients_saw(
    gateway: Gateway, two_sims: tuple[SimServerThread, SimServerThread]
) -> None:
    a, _ = two_sims
    scenario = parse_scenario(EXTERNAL_DRILL)
    target = DrillTarget(gateway.url, MASTER_KEY, None, {"a": a.url})
    report = run_drill_sync(scenario, target)
    assert report.total.requests == 65
    assert {d for d, _ in report.phases[0].answered_by} == {
        "chat/sim-a/sim-small#0",
        "chat/sim-b/sim-small#1",
    }
    assert report.total.errors == 0  # the 500s were retried on sim-b
    assert report.phases[1].fallbacks >= 1
    assert [(a.kind, a.ok) for a in report.actions] == [("fault", True), ("clear", True)]
    assert report.monitored is False and report.detect_source == "clients"
    # clients stopped seeing the fault (a pause of quiet_s) while it was still in force: the breaker
    # took sim-a out after its fifth consecutive failure, rather than every other request falling back
    assert report.detect_s is not None and report.detect_s == report.client_detect_s
    fault = report.phases[1]
    assert fault.fallbacks < fault.requests // 2, (fault.fallbacks, fault.requests)
    assert any("no master key" in note for note in report.notes)
    assert a.stats()["errors_injected"] >= 1


async def test_disable_and_enable_through_the_admin_api(gateway: Gateway) -> None:
    deployment = "chat/sim-b/sim-small#1"
    async with new_session() as session:
        admin = AdminClient(session, gateway.url, MASTER_KEY)
        runner = ActionRunner(session, sims={}, deployments={}, admin=admin, fleet=None, origin=0.0)
        await runner.run([(0.0, DisableAction(at=0, do="disable", deployment=deployment))])
        states = {d["id"]: d["state"] for d in await admin.deployments()}
        assert states[deployment] == "disabled"
        await runner.run([(0.0, EnableAction(at=0, do="enable", deployment=deployment))])
        states = {d["id"]: d["state"] for d in await admin.deployments()}
        assert states[deployment] == "closed"
    assert [(r.kind, r.ok, r.deployments) for r in runner.records] == [
        ("disable", True, (deployment,)),
        ("enable", True, (deployment,)),
    ]
