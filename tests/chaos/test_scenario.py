"""Scenario files: every shipped one is valid, and every mistake gets a message naming key and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from interlock.chaos import ScenarioError, load_scenario, parse_scenario, shipped_scenarios
from interlock.chaos.loading import resolve_scenario
from interlock.cli.main import app
from interlock.server.thread import free_port

GOOD = """\
name: drill
model: chat
rps: 20
phases: {baseline: 1s, fault: 1500ms, recovery: 1}
actions:
  - {at: fault, do: kill, sim: a}
  - {at: recovery+0.25, do: restart, sim: a}
  - {at: 0.5, do: fault, sim: b, faults: {error_rate: 0.5}}
  - {at: fault+1, do: clear, sim: "http://127.0.0.1:9/"}
  - {at: 2, do: disable, deployment: b}
  - {at: 2.5, do: enable, deployment: "chat/sim-b/sim-small#1"}
fleet:
  simulators: {a: {}, b: {ttft_ms: 5}}
  model: {breaker: {open_s: 1}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "test.yaml")
    assert info.value.source == "test.yaml"
    return info.value.problems


def test_good_scenario_parses_with_times_resolved() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.phases.total_s == pytest.approx(3.5)
    assert [(at, action.do) for at, action in scenario.schedule()] == [
        (0.5, "fault"),
        (1.0, "kill"),
        (2.0, "clear"),
        (2.0, "disable"),
        (2.5, "enable"),
        (2.75, "restart"),
    ]
    assert scenario.measure.p99_factor == 1.5
    assert scenario.fleet is not None and scenario.fleet.simulators["b"].ttft_ms == 5


def test_every_shipped_scenario_is_valid() -> None:
    shipped = shipped_scenarios()
    assert {"kill-one-deployment", "429-storm", "one-slow-replica", "mid-stream-cuts", "recovery"} <= set(
        shipped
    )
    for path in shipped.values():
        scenario = load_scenario(path)
        assert scenario.fleet is not None, f"{path.name} needs a fleet to run offline"
        assert scenario.actions


def test_shipped_scenarios_resolve_by_name_and_prefix() -> None:
    assert resolve_scenario("recovery").name == "recovery.yaml"
    assert resolve_scenario("scenarios/kill-one.yaml").name == "kill-one-deployment.yaml"
    with pytest.raises(ScenarioError, match="shipped: 429-storm"):
        resolve_scenario("no-such-drill")


def test_unknown_key_names_its_path_and_line() -> None:
    text = GOOD.replace("rps: 20", "rps: 20\nrpm: 5")
    assert problems(text) == ["rpm (line 4): unknown key"]


def test_unknown_and_missing_action_kinds() -> None:
    text = GOOD.replace("do: kill", "do: explode").replace("{at: 2.5, do: enable,", "{at: 2.5,")
    found = problems(text)
    assert found[0] == (
        "actions[0] (line 6): unknown action 'explode' "
        "(known: fault, clear, kill, stop, resume, restart, disable, enable)"
    )
    assert any(p.startswith("actions[5] (line 11): every action needs 'do'") for p in found)


def test_bad_times_and_durations() -> None:
    text = (
        GOOD.replace("at: fault+1,", "at: later,")
        .replace("at: 2, do: disable", "at: 99, do: disable")
        .replace("1500ms", "5 parsecs")
    )
    found = problems(text)
    assert any(p.startswith("phases.fault (line 4): not a duration: '5 parsecs'") for p in found), found


def test_action_times_outside_the_drill_and_unparseable() -> None:
    text = GOOD.replace("at: fault+1,", "at: later,").replace("at: 2, do: disable", "at: 99, do: disable")
    found = problems(text)
    assert any(p.startswith("actions[3].at (line 9): 'at' must be seconds or a phase") for p in found), found
    assert "actions[4].at (line 10): 99 s is outside the drill (0 to 3.5 s)" in found


def test_kill_needs_a_fleet_and_restart_needs_a_kill() -> None:
    no_fleet = GOOD.split("fleet:")[0].replace("sim: b,", "sim: 'http://127.0.0.1:9',")
    found = problems(no_fleet)
    assert any("'kill' works on a simulator of the scenario's fleet; there is no 'fleet'" in p for p in found)
    reordered = GOOD.replace("{at: fault, do: kill", "{at: recovery+0.5, do: kill")
    assert any("restart of 'a' with no kill of it before" in p for p in problems(reordered))
    unknown = GOOD.replace("do: kill, sim: a", "do: kill, sim: c")
    assert any("'c' is not one (known: a, b)" in p for p in problems(unknown))


def test_fault_values_are_checked_like_the_simulator_does() -> None:
    found = problems(GOOD.replace("error_rate: 0.5", "error_rate: 2"))
    assert found == ["actions[2] (line 8): faults: 'error_rate' must be between 0 and 1, got 2"]
    found = problems(GOOD.replace("error_rate: 0.5", "explode: true"))
    assert "unknown fault(s) ['explode']" in found[0]
    found = problems(GOOD.replace("error_rate: 0.5", "error_rate: 0"))
    assert "set at least one fault" in found[0]


def test_fleet_model_settings_are_checked_against_the_config_schema() -> None:
    found = problems(GOOD.replace("breaker: {open_s: 1}", "breaker: {open_seconds: 1}"))
    assert found == ["fleet (line 12): model.breaker.open_seconds: unknown key"]
    found = problems(GOOD.replace("model: {breaker: {open_s: 1}}", "model: {deployments: []}"))
    assert found == ["fleet (line 12): model.deployments: set by the fleet itself; leave it out"]
    found = problems(GOOD.replace("a: {}", "a: {tpot: 3}"))
    assert found == ["fleet.simulators.a.tpot (line 13): unknown key"]


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("name: [unclosed")[0].startswith("not valid YAML")
    assert problems("- just\n- a list\n") == [
        "the top level must be a mapping (name, rps, phases, actions …)"
    ]
    assert problems("name: x\n") == ["rps: required key is missing", "phases: required key is missing"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(tmp_path / "absent.yaml")


def test_overrides_are_validated() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.with_overrides(rps=200, stream=True).rps == 200
    with pytest.raises(ValidationError):
        scenario.with_overrides(rps=-1)


def test_cli_reports_an_invalid_scenario_with_exit_status_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("rps: 20", "rps: fast"), encoding="utf-8")
    result = CliRunner().invoke(app, ["chaos", str(path), "--fleet"])
    assert result.exit_code == 2
    assert "rps (line 3): Input should be a valid number" in result.stderr


def test_cli_needs_a_gateway_or_a_fleet_and_says_when_it_cannot_reach_it() -> None:
    result = CliRunner().invoke(app, ["chaos", "kill-one-deployment", "--key", "sk-x"])
    assert result.exit_code == 2
    assert "--fleet" in result.stderr
    port = free_port()  # nothing listens there
    gateway = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(app, ["chaos", "429-storm", "--gateway", gateway, "--key", "sk-x"])
    assert result.exit_code == 1
    assert f"cannot reach the gateway at {gateway}" in result.stderr


def test_cli_lists_the_shipped_scenarios() -> None:
    result = CliRunner().invoke(app, ["chaos", "--list"])
    assert result.exit_code == 0
    assert "kill-one-deployment" in result.stdout and "mid-stream-cuts" in result.stdout
