"""The fault matrix: each fault kind x streaming or not x with or without a healthy fallback, and what
the client sees. With a healthy deployment beside the faulty one, the fault is invisible (200). Without
one, a clear 4xx/5xx naming what was tried — never a 500 with a traceback — or, once a stream has
started, an SSE error event: never a silent truncated 200."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from tests.conftest import FAST_SIM
from tests.gateway_harness import Gateway, running_gateway, simple_config

MESSAGES = [{"role": "user", "content": "hello there"}]

FAULTS: dict[str, dict[str, Any]] = {
    "error_500": {"error_rate": 1.0, "error_status": 500},
    "error_503": {"error_rate": 1.0, "error_status": 503},
    "rate_limit_429": {"error_rate": 1.0, "error_status": 429, "retry_after_s": 1},
    "hang": {"hang": True},
    "reset": {"reset_rate": 1.0},
    "garbage_json": {"garbage": "json"},
    "garbage_content_type": {"garbage": "content_type"},
    "garbage_sse": {"garbage": "sse"},
}
# what a client sees without a fallback: status, and a word of the message
ALONE = {
    "error_500": (503, "upstream_error"),
    "error_503": (503, "upstream_error"),
    "rate_limit_429": (429, "rate limited"),
    "hang": (503, "upstream_timeout"),
    "reset": (503, "closed the connection"),
    "garbage_json": (503, "upstream"),
    "garbage_content_type": (503, "upstream"),
    "garbage_sse": (503, "upstream"),
}
QUICK = "{read_timeout_s: 0.5, base_url"
RETRY = "    retry: {base_delay_ms: 1, max_delay_ms: 5}\n    timeouts: {first_token_s: 0.5}\n"


def set_faults(sim: SimServerThread, **faults: Any) -> None:
    response = httpx.post(sim.url + "/sim/faults", json=faults)
    assert response.status_code == 200, response.text


def quick(config: str) -> str:
    """Short read timeouts and short backoffs, so hangs and retries take little test time."""
    return config.replace("{kind: openai, base_url", "{kind: openai, read_timeout_s: 0.5, base_url").replace(
        "  chat:\n", "  chat:\n" + RETRY, 1
    )


@pytest.fixture
def alone(sim: SimServerThread, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(quick(simple_config({"sim-a": sim.base_url}, tmp_path))) as gw:
        yield gw


@pytest.fixture
def healthy() -> Iterator[SimServerThread]:
    with SimServerThread(FAST_SIM) as server:
        yield server


@pytest.fixture
def paired(sim: SimServerThread, healthy: SimServerThread, tmp_path: Path) -> Iterator[Gateway]:
    """``chat`` on a faulty ``sim-a`` and a healthy ``sim-b``, round robin so both start requests."""
    config = quick(simple_config({"sim-a": sim.base_url, "sim-b": healthy.base_url}, tmp_path))
    config = config.replace("  chat:\n", "  chat:\n    routing: {strategy: round-robin}\n", 1)
    with running_gateway(config) as gw:
        yield gw


def create(gateway: Gateway, stream: bool) -> tuple[int, str, str]:
    """(status, text or error message, x-interlock-attempts) as the openai SDK client sees them."""
    client = gateway.openai(timeout=30)
    try:
        raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[call-overload]
        parsed = raw.parse()
        text = (
            "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
            if stream
            else parsed.choices[0].message.content
        )
        return raw.status_code, text, raw.headers.get("x-interlock-attempts", "")
    except openai.APIStatusError as exc:
        return exc.status_code, exc.message, exc.response.headers.get("x-interlock-attempts", "")


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_without_fallback(alone: Gateway, sim: SimServerThread, fault: str, stream: bool) -> None:
    set_faults(sim, **FAULTS[fault])
    status, message, attempts = create(alone, stream)
    expected_status, word = ALONE[fault]
    assert status == expected_status, message
    assert word in message
    assert "Traceback" not in message
    assert attempts.count("chat/sim-a/sim-small#0=") >= 1


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_with_healthy_fallback_is_invisible(
    paired: Gateway, sim: SimServerThread, fault: str, stream: bool
) -> None:
    set_faults(sim, **FAULTS[fault])
    results = [create(paired, stream) for _ in range(2)]
    assert [status for status, _, _ in results] == [200, 200], results
    assert all(text for _, text, _ in results)
    # round robin started one of the two on the faulty deployment, which then fell back
    assert any(
        a.startswith("chat/sim-a/sim-small#0=") and "chat/sim-b/sim-small#1=ok" in a for _, _, a in results
    )


def test_upstream_down_without_fallback_is_503(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with running_gateway(quick(simple_config({"dead": dead}, tmp_path))) as gw:
        status, message, _ = create(gw, stream=False)
    assert status == 503
    assert "cannot connect" in message  # the breaker opened at once: one attempt, its own error


def test_upstream_down_with_fallback_is_invisible(healthy: SimServerThread, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    config = quick(simple_config({"dead": dead, "sim-b": healthy.base_url}, tmp_path))
    with running_gateway(config) as gw:
        assert [create(gw, stream)[0] for stream in (False, True, False, True)] == [200] * 4


def test_stream_cut_mid_way_ends_with_an_error_event(alone: Gateway, sim: SimServerThread) -> None:
    set_faults(sim, cut_after_tokens=3)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in alone.openai().chat.completions.create(model="chat", messages=MESSAGES, stream=True):  # type: ignore[arg-type]
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received, "the tokens before the cut reach the client"
    assert "stream" in caught.value.message


def test_stream_cut_raw_has_no_done_marker(alone: Gateway, sim: SimServerThread) -> None:
    set_faults(sim, cut_after_tokens=2)
    with httpx.stream(
        "POST",
        alone.base_url + "/chat/completions",
        json={"model": "chat", "messages": MESSAGES, "stream": True},
        headers={"Authorization": f"Bearer {alone.master_key}"},
    ) as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert "[DONE]" not in body
    assert body.rstrip().splitlines()[-1].startswith('data: {"error"')


def test_callers_own_error_is_not_retried(alone: Gateway, sim: SimServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        alone.openai().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "word " * 40000}]
        )
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.response.headers["x-interlock-attempts"].count("=") == 1
    assert httpx.get(sim.url + "/sim/stats").json()["requests_total"] == 1
