"""What the client sees when the upstream misbehaves: a clear 4xx/5xx, or an SSE error event once a
stream has started — never a 500 with a traceback, never a silent truncated 200."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from tests.gateway_harness import Gateway, running_gateway, simple_config

MESSAGES = [{"role": "user", "content": "hello there"}]


def set_faults(sim: SimServerThread, **faults: Any) -> None:
    response = httpx.post(sim.url + "/sim/faults", json=faults)
    assert response.status_code == 200, response.text


@pytest.fixture
def impatient(sim: SimServerThread, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway whose provider gives up after half a second of silence."""
    config = simple_config({"sim-a": sim.base_url}, tmp_path).replace(
        f"base_url: {sim.base_url}}}", f"base_url: {sim.base_url}, read_timeout_s: 0.5}}"
    )
    with running_gateway(config) as gw:
        yield gw


def client_for(gateway: Gateway) -> openai.OpenAI:
    return gateway.openai(timeout=20)


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_500_is_502(gateway: Gateway, sim: SimServerThread, stream: bool) -> None:
    set_faults(sim, error_rate=1.0, error_status=500)
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(gateway).chat.completions.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[arg-type]
    assert caught.value.status_code == 502
    assert "status 500" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_429_is_429_with_retry_after(gateway: Gateway, sim: SimServerThread, stream: bool) -> None:
    set_faults(sim, error_rate=1.0, error_status=429, retry_after_s=7)
    with pytest.raises(openai.RateLimitError) as caught:
        client_for(gateway).chat.completions.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[arg-type]
    assert caught.value.response.headers["retry-after"] == "7"


def test_upstream_down_is_503(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with (
        running_gateway(simple_config({"dead": dead}, tmp_path)) as gw,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        client_for(gw).chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    assert "cannot connect" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_hang_is_504(impatient: Gateway, sim: SimServerThread, stream: bool) -> None:
    set_faults(sim, hang=True)
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(impatient).chat.completions.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[arg-type]
    assert caught.value.status_code == 504


@pytest.mark.parametrize("stream", [False, True])
def test_connection_reset_is_502(gateway: Gateway, sim: SimServerThread, stream: bool) -> None:
    set_faults(sim, reset_rate=1.0)
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(gateway).chat.completions.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[arg-type]
    assert caught.value.status_code == 502


@pytest.mark.parametrize("garbage", ["json", "content_type", "sse"])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_garbage_is_a_clear_502(
    gateway: Gateway, sim: SimServerThread, garbage: str, stream: bool
) -> None:
    set_faults(sim, garbage=garbage)
    with pytest.raises(openai.APIError) as caught:
        client = client_for(gateway)
        result = client.chat.completions.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[arg-type]
        if stream:
            list(result)  # type: ignore[arg-type]
    error = caught.value
    if isinstance(error, openai.APIStatusError):
        assert error.status_code == 502
    assert "upstream" in error.message


def test_stream_cut_mid_way_ends_with_an_error_event(gateway: Gateway, sim: SimServerThread) -> None:
    set_faults(sim, cut_after_tokens=3)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client_for(gateway).chat.completions.create(
            model="chat", messages=MESSAGES, stream=True
        ):  # type: ignore[arg-type]
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received, "the tokens before the cut reach the client"
    assert "stream" in caught.value.message


def test_stream_cut_raw_has_no_done_marker(gateway: Gateway, sim: SimServerThread) -> None:
    set_faults(sim, cut_after_tokens=2)
    with httpx.stream(
        "POST",
        gateway.base_url + "/chat/completions",
        json={"model": "chat", "messages": MESSAGES, "stream": True},
        headers={"Authorization": f"Bearer {gateway.master_key}"},
    ) as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert "[DONE]" not in body
    assert body.rstrip().splitlines()[-1].startswith('data: {"error"')


def test_context_length_error_passes_through_as_400(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(gateway).chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "word " * 40000}]
        )
    assert caught.value.code == "context_length_exceeded"
