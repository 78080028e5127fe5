"""Starting and stopping simulators: in a thread, as a child process, and from the command line."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import interlock.sim.command as sim_cli
from interlock.sim import SimConfig, SimProcess, SimServerThread, config_to_args

from .helpers import INSTANT, chat_body, get, post, wait_for_stats


def test_thread_serves_on_a_free_port_and_leaves_nothing_behind() -> None:
    before = set(threading.enumerate())
    with SimServerThread(INSTANT) as sim:
        assert sim.port > 0
        assert sim.url == f"http://127.0.0.1:{sim.port}"
        assert sim.base_url == sim.url + "/v1"
        assert get(sim.url + "/health").json() == {"status": "ok"}
        with pytest.raises(RuntimeError):
            sim.start()
    assert set(threading.enumerate()) == before
    with pytest.raises(httpx.ConnectError):
        get(sim.url + "/health")
    sim.stop()  # stopping twice is harmless


def test_two_simulators_side_by_side_keep_their_own_state() -> None:
    with SimServerThread(INSTANT, name="left") as left, SimServerThread(INSTANT, name="right") as right:
        assert left.port != right.port
        post(left.url + "/v1/chat/completions", json=chat_body())
        assert get(left.url + "/sim/stats").json()["requests_total"] == 1
        assert get(right.url + "/sim/stats").json()["requests_total"] == 0
        answer = post(right.url + "/v1/chat/completions", json=chat_body()).json()
        assert answer["system_fingerprint"] == "fp_right"


def test_stopping_ends_hung_requests() -> None:
    sim = SimServerThread(INSTANT)
    sim.start()
    post(sim.url + "/sim/faults", json={"hang": True})
    errors: list[BaseException] = []

    def call() -> None:
        try:
            post(sim.url + "/v1/chat/completions", json=chat_body(), timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for_stats(sim, lambda s: s["hangs"] == 1)
    sim.stop()
    caller.join(30)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], httpx.TransportError)


def test_config_round_trips_through_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SimConfig(
        port=8123,
        name="node-a",
        models=("a", "b/c"),
        ttft_ms=1.5,
        prefill_ms_per_token=0.25,
        tpot_ms=3,
        max_queue=5,
        queue_full_status=429,
        api_key="k",
        seed=9,
        embedding_dim=64,
    )
    seen: list[SimConfig] = []
    monkeypatch.setattr(sim_cli, "serve", seen.append)
    app = sim_cli.typer.Typer()
    sim_cli.register(app)
    result = CliRunner().invoke(app, config_to_args(config))
    assert result.exit_code == 0, result.output
    assert seen == [config]


def test_command_line_refuses_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_cli, "serve", lambda config: None)
    app = sim_cli.typer.Typer()
    sim_cli.register(app)
    result = CliRunner().invoke(app, ["--max-concurrency", "0"])
    assert result.exit_code == 2
    per_1k: list[Any] = []
    monkeypatch.setattr(sim_cli, "serve", per_1k.append)
    assert CliRunner().invoke(app, ["--prefill-ms-per-1k", "40"]).exit_code == 0
    assert per_1k[0].prefill_ms_per_token == pytest.approx(0.04)


def test_child_process_simulator() -> None:
    with SimProcess(INSTANT, name="child") as child:
        assert child.port > 0
        assert get(child.url + "/health").json() == {"status": "ok"}
        answer = post(child.base_url + "/chat/completions", json=chat_body()).json()
        assert answer["system_fingerprint"] == "fp_child"
        process = child.process
        assert process is not None
    assert process.returncode is not None


def test_blocking_controls(sim: SimServerThread) -> None:
    assert sim.healthy()
    shown = sim.set_faults(error_rate=1, error_status=503, only_models=["down"])
    assert shown["error_status"] == 503
    assert post(sim.base_url + "/chat/completions", json=chat_body(model="down")).status_code == 503
    assert sim.stats()["errors_injected"] == 1
    with pytest.raises(ValueError, match="error_rate"):
        sim.set_faults(error_rate=3)
    sim.clear_faults()
    assert post(sim.base_url + "/chat/completions", json=chat_body(model="down")).status_code == 200
    assert sim.reset_stats()["requests_total"] == 0
    sim.reset_prefix_cache()
    assert sim.stats()["prefix_cache_blocks"] == 0
