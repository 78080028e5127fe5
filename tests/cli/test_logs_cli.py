"""``interlock logs`` against a real gateway over loopback HTTP: the request log, newest first, and
its filters (model, status, since, key, limit) returning exactly the rows they should."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest

from interlock.sim import SimServerThread
from tests.cli.cli import interlock, table_rows
from tests.conftest import FAST_SIM
from tests.gateway_harness import Gateway, running_gateway, simple_config

MESSAGES = [{"role": "user", "content": "hello"}]
CHAT = "chat/sim-a/sim-small#0"


@dataclass(frozen=True)
class History:
    """A gateway that has logged seven requests, the virtual key that sent one of them, and a
    moment between the sixth and the seventh."""

    gateway: Gateway
    tenant_key_id: str
    between: datetime


def wait_for_log(gateway: Gateway, count: int) -> None:
    """Until the request log holds ``count`` records (they are written off the request path)."""
    deadline = time.monotonic() + 10
    with gateway.admin() as admin:
        while len(admin.get("/admin/requests").json()["data"]) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"the request log never reached {count} records")
            time.sleep(0.05)


def send_history(gateway: Gateway, sim: SimServerThread) -> History:
    """Oldest first: chat, streamed chat, embeddings, chat with a virtual key, a model that does not
    exist (404), chat the upstream refuses (400); then, after ``between``, one more chat."""
    client = gateway.openai()
    client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    client.embeddings.create(model="embed", input=["a passage"])
    tenant_id, tenant_key = gateway.create_key("tenant")
    gateway.openai(tenant_key).chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-unknown", messages=MESSAGES)  # type: ignore[arg-type]
    sim.set_faults(error_rate=1.0, error_status=400)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    sim.clear_faults()
    wait_for_log(gateway, 6)
    between = datetime.now(UTC)
    client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    wait_for_log(gateway, 7)
    return History(gateway, tenant_id, between)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """One gateway and its history for the whole module: the tests only read the log."""
    tmp = tmp_path_factory.mktemp("logs")
    with SimServerThread(FAST_SIM) as sim, running_gateway(simple_config({"sim-a": sim.base_url}, tmp)) as gw:
        yield send_history(gw, sim)


def logs(history: History, *options: str) -> list[dict[str, Any]]:
    """``interlock logs --json OPTIONS``: one record per line."""
    result = interlock("logs", "--json", *options, gateway=history.gateway.url)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_everything_newest_first(history: History) -> None:
    records = logs(history)
    assert [(r["model"], r["status"], r["key_id"], r["stream"]) for r in records] == [
        ("chat", 200, "master", False),
        ("chat", 400, "master", False),
        ("gpt-unknown", 404, "master", False),
        ("chat", 200, history.tenant_key_id, False),
        ("embed", 200, "master", False),
        ("chat", 200, "master", True),
        ("chat", 200, "master", False),
    ]
    created = [r["created_at"] for r in records]
    assert created == sorted(created, reverse=True)


def test_model_filter(history: History) -> None:
    assert [(r["model"], r["operation"], r["status"]) for r in logs(history, "--model", "embed")] == [
        ("embed", "embeddings", 200)
    ]
    chat = logs(history, "--model", "chat")
    assert len(chat) == 5 and {r["model"] for r in chat} == {"chat"}
    [unknown] = logs(history, "--model", "gpt-unknown")
    assert unknown["status"] == 404
    assert logs(history, "--model", "no-such-model") == []


def test_status_filters(history: History) -> None:
    errors = logs(history, "--status", "error")
    assert [(r["model"], r["status"]) for r in errors] == [("chat", 400), ("gpt-unknown", 404)]
    assert errors[0]["error_kind"] and errors[0]["attempts"][0]["deployment"] == CHAT
    assert errors[1]["error_kind"] == "model_not_found" and errors[1]["attempts"] == []
    ok = logs(history, "--status", "ok")
    assert len(ok) == 5 and {r["status"] for r in ok} == {200} and {r["error_kind"] for r in ok} == {None}
    assert logs(history, "--status", "404") == errors[1:]
    assert len(logs(history, "--status", "ok", "--model", "chat")) == 4
    assert logs(history, "--status", "error", "--model", "embed") == []
    assert logs(history, "--status", "500") == []


def test_since(history: History) -> None:
    [newest] = logs(history, "--since", history.between.isoformat())
    assert (newest["model"], newest["status"]) == ("chat", 200)
    assert newest == logs(history)[0]
    assert len(logs(history, "--since", "1h")) == 7
    later = (history.between + timedelta(hours=1)).isoformat()
    assert logs(history, "--since", later) == []


def test_key_and_limit(history: History) -> None:
    [tenant] = logs(history, "--key-id", history.tenant_key_id)
    assert tenant["model"] == "chat" and tenant["status"] == 200
    everything = logs(history)
    assert logs(history, "--limit", "2") == everything[:2]


def test_the_table_shows_each_request(history: History) -> None:
    result = interlock("logs", gateway=history.gateway.url)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    records = logs(history)
    assert len(rows) == len(records) == 7
    for row, record in zip(rows, records, strict=True):
        time_, model, deployment, status, _, ttft, tokens, _, attempts = row
        assert time_ == record["created_at"][11:19]
        assert (model, status) == (record["model"], str(record["status"]))
        assert deployment == (record["deployment"] or "-")
        assert tokens == f"{record['prompt_tokens']}/{record['completion_tokens']}"
        assert attempts == str(len(record["attempts"]))
        assert (ttft == "-") == (record["ttft_ms"] is None)
    assert rows[0][2] == CHAT and rows[0][8] == "1"
    assert rows[2][1:4] == ["gpt-unknown", "-", "404"] and rows[2][6] == "0/0" and rows[2][8] == "0"
    assert rows[5][5].endswith(" ms")  # the streamed request has a time to first token


def test_bad_filters_fail_cleanly(history: History) -> None:
    status = interlock("logs", "--status", "nope", gateway=history.gateway.url)
    assert status.exit_code == 1
    assert status.output == "error 400: 'status' must be ok, error or an HTTP status code.\n"
    since = interlock("logs", "--since", "yesterday", gateway=history.gateway.url)
    assert since.exit_code == 1
    assert "'since' must be a duration like 15m, 1h, 7d or an ISO timestamp" in since.output
