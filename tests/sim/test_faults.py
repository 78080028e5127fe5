"""Injected faults, set through ``/sim/faults``, as a gateway sees them over the wire."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest

from interlock.sim import SimServerThread

from .conftest import StartSim
from .helpers import TLS, chat_body, delete, post, sdk, stats, wait_for_stats


def set_faults(sim: SimServerThread, **faults: Any) -> dict[str, Any]:
    """Set faults through the raw HTTP route (the blocking ``sim.set_faults`` is tested elsewhere)."""
    response = post(sim.url + "/sim/faults", json=faults)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_faults_are_shown_and_cleared(sim: SimServerThread, http: httpx.Client) -> None:
    shown = set_faults(sim, error_rate=0.25, only_models=["b", "a"])
    assert shown["active"] is True
    assert shown["faults"]["error_rate"] == 0.25 and shown["faults"]["only_models"] == ["a", "b"]
    assert http.get("/sim/faults").json() == shown
    cleared = http.delete("/sim/faults").json()
    assert cleared["active"] is False and cleared["faults"]["error_rate"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 2},
        {"error_rate": "half"},
        {"error_status": 200},
        {"hang": "yes"},
        {"garbage": "xml"},
        {"only_models": "a"},
        {"latency_ms": -1},
        {"cut_after_tokens": 1.5},
        {"explode": True},
        [1, 2],
    ],
)
def test_bad_faults_are_refused(sim: SimServerThread, http: httpx.Client, body: Any) -> None:
    response = http.post("/sim/faults", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert http.get("/sim/faults").json()["active"] is False


def test_error_status_with_retry_after(sim: SimServerThread, client: openai.OpenAI) -> None:
    set_faults(sim, error_rate=1, error_status=429, retry_after_s=7)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["type"] == "requests"  # type: ignore[index]
    set_faults(sim, error_rate=1)
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="m", input="hi")
    assert stats(sim)["errors_injected"] == 2


def test_error_rate_is_seeded_and_repeatable(sim: SimServerThread, http: httpx.Client) -> None:
    def outcomes() -> list[int]:
        set_faults(sim, error_rate=0.5, error_status=503)
        return [http.post("/v1/chat/completions", json=chat_body()).status_code for _ in range(16)]

    first = outcomes()
    assert set(first) == {200, 503}
    assert outcomes() == first


def test_only_models_limits_faults(sim: SimServerThread, http: httpx.Client) -> None:
    set_faults(sim, error_rate=1, only_models=["broken"])
    assert http.post("/v1/chat/completions", json=chat_body(model="broken")).status_code == 500
    assert http.post("/v1/chat/completions", json=chat_body(model="fine")).status_code == 200


def test_latency_still_answers(sim: SimServerThread, client: openai.OpenAI) -> None:
    set_faults(sim, latency_ms=30, slow_stream_ms=2)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    streamed = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == reply.choices[0].message.content
    assert stats(sim)["completed"] == 2


def test_hang_until_client_gives_up(sim: SimServerThread) -> None:
    set_faults(sim, hang=True)
    with sdk(sim.base_url, timeout=0.3) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    after = wait_for_stats(sim, lambda s: s["cancelled"] == 1)
    assert after["hangs"] == 1 and after["cancelled"] == 1 and after["in_flight"] == 0


def test_reset_drops_the_connection(sim: SimServerThread, client: openai.OpenAI, http: httpx.Client) -> None:
    set_faults(sim, reset_rate=1)
    with pytest.raises(httpx.TransportError):
        http.post("/v1/chat/completions", json=chat_body())
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    after = wait_for_stats(sim, lambda s: s["in_flight"] == 0)
    assert after["resets_injected"] == 2 and after["cancelled"] == 0 and after["completed"] == 0


def test_cut_stream_ends_without_done(sim: SimServerThread, http: httpx.Client) -> None:
    set_faults(sim, cut_after_tokens=3)
    lines: list[str] = []
    # The error comes while reading the body, after the first chunks arrived.
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response,
    ):
        assert response.status_code == 200
        lines.extend(line for line in response.iter_lines() if line)
    payloads = [line.removeprefix("data: ") for line in lines]
    assert "[DONE]" not in payloads
    chunks = [orjson.loads(p) for p in payloads]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:]]
    assert len(contents) == 3 and all(contents)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert wait_for_stats(sim, lambda s: s["responses_cut"] == 1)["responses_cut"] == 1


def test_cut_whole_response_is_truncated_json(sim: SimServerThread, http: httpx.Client) -> None:
    set_faults(sim, cut_after_tokens=2)
    response = http.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


def test_garbage_json(sim: SimServerThread, http: httpx.Client, client: openai.OpenAI) -> None:
    set_faults(sim, garbage="json")
    response = http.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    with http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as streamed:
        data = [line.removeprefix("data: ") for line in streamed.iter_lines() if line.startswith("data: ")]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data[0])


def test_garbage_content_type(sim: SimServerThread, http: httpx.Client) -> None:
    set_faults(sim, garbage="content_type")
    response = http.post("/v1/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_garbage_sse(sim: SimServerThread, http: httpx.Client) -> None:
    set_faults(sim, garbage="sse")
    with http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines
    assert "data: [DONE]" not in lines
    well_formed = 0
    for line in lines:
        if line.startswith("data: "):
            try:
                orjson.loads(line.removeprefix("data: "))
                well_formed += 1
            except orjson.JSONDecodeError:
                pass
    assert well_formed == 0
    assert stats(sim)["garbage_injected"] == 1


def test_hang_is_released_when_faults_clear(start_sim: StartSim) -> None:
    sim = start_sim()
    set_faults(sim, hang=True)
    with httpx.Client(verify=TLS, base_url=sim.url, timeout=10) as http:
        import threading

        results: list[int] = []
        worker = threading.Thread(
            target=lambda: results.append(http.post("/v1/chat/completions", json=chat_body()).status_code)
        )
        worker.start()
        wait_for_stats(sim, lambda s: s["hangs"] == 1)
        delete(sim.url + "/sim/faults")
        worker.join(10)
    assert results == [200]
    assert stats(sim)["completed"] == 1
