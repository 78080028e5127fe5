"""``interlock status`` against a real gateway over loopback HTTP: every deployment of every model,
with its breaker state as traffic changes it, and operator switches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from tests.cli.cli import interlock, table_rows
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

MESSAGES = [{"role": "user", "content": "hello"}]
DEAD, LIVE, EMBED = "chat/dead/m#0", "chat/live/sim-small#1", "embed/live/sim-embed#0"


def config(tmp: Path, live: str, dead: str) -> str:
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
pools:
  gpu: {{labels: {{hardware: gpu}}}}
providers:
  live: {{kind: openai, base_url: {live}}}
  dead: {{kind: openai, base_url: {dead}, connect_timeout_s: 1}}
models:
  chat:
    routing: {{strategy: round-robin}}
    breaker: {{open_s: 60, max_open_s: 60}}
    deployments:
      - {{provider: dead, model: m, max_concurrency: 4}}
      - {{provider: live, model: sim-small, pool: gpu, max_concurrency: 8}}
  embed:
    kind: embeddings
    deployments:
      - {{provider: live, model: sim-embed, max_concurrency: 16}}
"""


@pytest.fixture
def gateway(sim: SimServerThread, tmp_path: Path) -> Iterator[Gateway]:
    """Model ``chat`` over a dead and a live deployment (round-robin), and ``embed``."""
    with running_gateway(config(tmp_path, sim.base_url, f"http://127.0.0.1:{free_port()}/v1")) as gw:
        yield gw


def status(gateway: Gateway, *options: str) -> dict[str, list[str]]:
    """``interlock status``: each row's cells by deployment id, in the order printed."""
    result = interlock("status", *options, gateway=gateway.url)
    assert result.exit_code == 0, result.output
    return {row[0]: row for row in table_rows(result.output)}


def test_every_deployment_starts_closed(gateway: Gateway) -> None:
    rows = status(gateway)
    assert list(rows) == [DEAD, LIVE, EMBED]  # config order
    #                   pool  state     errors   ttft in flight limit queued requests
    assert rows[DEAD][1:] == ["-", "closed", "0.0 %", "-", "0", "4", "0", "0"]
    assert rows[LIVE][1:] == ["gpu", "closed", "0.0 %", "-", "0", "8", "0", "0"]
    assert rows[EMBED][1:] == ["-", "closed", "0.0 %", "-", "0", "16", "0", "0"]


def test_a_dead_deployment_shows_open_after_traffic(gateway: Gateway) -> None:
    client = gateway.openai()
    for _ in range(4):
        assert list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    rows = status(gateway)
    # the first stream tried the dead deployment (connection refused opens its breaker at once) and
    # fell back to the live one, which answered all four and so has a time to first token
    assert rows[DEAD][2:4] == ["open", "100.0 %"] and rows[DEAD][8] == "1"
    assert rows[LIVE][2:4] == ["closed", "0.0 %"] and rows[LIVE][8] == "4"
    assert rows[LIVE][4].endswith(" ms") and float(rows[LIVE][4].removesuffix(" ms")) > 0
    assert rows[EMBED][2] == "closed" and rows[EMBED][8] == "0"


def test_model_filter(gateway: Gateway) -> None:
    assert list(status(gateway, "--model", "chat")) == [DEAD, LIVE]
    assert list(status(gateway, "--model", "embed")) == [EMBED]
    assert status(gateway, "--model", "no-such-model") == {}


def test_disabled_and_enabled_again(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        assert admin.post("/admin/deployments/chat/live/sim-small%231/disable").status_code == 200
        assert status(gateway)[LIVE][2] == "disabled"
        assert admin.post("/admin/deployments/chat/live/sim-small%231/enable").status_code == 200
    assert status(gateway)[LIVE][2] == "closed"


def test_a_wrong_master_key_or_no_gateway_fails_cleanly(gateway: Gateway) -> None:
    wrong = interlock("status", gateway=gateway.url, master_key="sk-wrong-master-000")
    assert wrong.exit_code == 1 and wrong.output.startswith("error 401:")
    nobody = f"http://127.0.0.1:{free_port()}"
    down = interlock("status", gateway=nobody)
    assert down.exit_code == 1 and f"cannot reach {nobody}" in down.output
