"""``interlock top --once`` and ``interlock report weekly`` against a real gateway over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from interlock.cli.main import app
from interlock.server.thread import free_port
from interlock.sim import SimServerThread
from interlock.telemetry.report_render import to_html, to_markdown
from tests.gateway_harness import MASTER_KEY, running_gateway

runner = CliRunner()
MESSAGES = [{"role": "user", "content": "hello"}]


def config(tmp: Path, live: str, dead: str) -> str:
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
providers:
  live: {{kind: openai, base_url: {live}}}
  dead: {{kind: openai, base_url: {dead}, connect_timeout_s: 1}}
models:
  chat:
    routing: {{strategy: round-robin}}
    slo: {{ttft_ms: 5000, target: 0.9}}
    deployments:
      - {{provider: dead, model: m, price: {{input: 1.0, output: 2.0}}}}
      - {{provider: live, model: sim-small, price: {{input: 1.0, output: 2.0}}}}
  embed:
    kind: embeddings
    deployments:
      - {{provider: live, model: sim-embed}}
"""


@pytest.fixture
def gateway(sim: SimServerThread, tmp_path: Path) -> Iterator[str]:
    """A gateway that has served chat traffic: six answers, the first of them via a fallback from
    the dead deployment (whose breaker then opens), and one request refused for a wrong key."""
    text = config(tmp_path, sim.base_url, f"http://127.0.0.1:{free_port()}/v1")
    with running_gateway(text) as gw:
        auth = {"Authorization": f"Bearer {MASTER_KEY}"}
        with httpx.Client(base_url=gw.url, headers=auth, timeout=30) as client:
            for i in range(6):
                body = {"model": "chat", "messages": MESSAGES, "stream": i % 2 == 0}
                assert client.post("/v1/chat/completions", json=body).status_code == 200
            wrong_key = {"Authorization": "Bearer sk-not-a-key-123"}
            body = {"model": "chat", "messages": MESSAGES}
            assert client.post("/v1/chat/completions", json=body, headers=wrong_key).status_code == 401
            deadline = time.monotonic() + 10
            while len(client.get("/admin/requests").json()["data"]) < 7 and time.monotonic() < deadline:
                time.sleep(0.05)
        yield gw.url


def test_top_once_prints_models_and_deployments(gateway: str) -> None:
    result = runner.invoke(
        app, ["top", "--gateway", gateway, "--master-key", MASTER_KEY, "--once", "--interval", "0.1"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("models", "deployments", "req/s", "chat", "embed", "chat/live/sim-small#1", "closed", "SLO"):
        assert text in out
    chat_row = next(line for line in out.splitlines() if line.strip().startswith("│ chat "))
    # six served; the wrong key was refused before its body (naming the model) was read
    assert " 6 " in chat_row


def test_top_says_when_the_gateway_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["top", "--gateway", url, "--master-key", MASTER_KEY, "--once"])
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_top_with_a_wrong_key_fails_cleanly(gateway: str) -> None:
    result = runner.invoke(app, ["top", "--gateway", gateway, "--master-key", "sk-wrong-key-000", "--once"])
    assert result.exit_code == 1 and "401" in result.output


def test_weekly_report_as_markdown(gateway: str) -> None:
    result = runner.invoke(app, ["report", "weekly", "--gateway", gateway, "--master-key", MASTER_KEY])
    assert result.exit_code == 0, result.output
    md = result.output
    assert md.startswith("# Interlock weekly report")
    for section in ("Summary", "Performance", "SLO compliance", "Cost", "Fallbacks", "Top consumers: keys"):
        assert f"## {section}" in md
    lines = md.splitlines()
    summary = lines[lines.index("## Summary") + 4]
    assert summary.startswith("| 7 |")  # 6 served, 1 refused (wrong key)
    assert summary.split(" | ")[3] == "14.29 %"  # fallbacks: 1 of 7
    performance = next(line for line in lines[lines.index("## Performance") :] if line.startswith("| chat |"))
    chat_requests = int(performance.split(" | ")[1])
    fallbacks = lines[lines.index("## Fallbacks") + 4 : lines.index("## Fallbacks") + 6]
    # only the first request fell back (the dead deployment's breaker opened on it)
    assert fallbacks[0].startswith(f"| chat | {chat_requests} | 1 | {100 / chat_requests:.2f} % |")
    assert fallbacks[1].startswith("| embed | 0 | 0 | - |")
    failed = lines[lines.index("## Failed attempts behind fallbacks") + 4]
    assert failed == "| chat/dead/m#0 | upstream_unavailable | 1 |"
    slo = next(line for line in lines[lines.index("## SLO compliance") :] if line.startswith("| chat |"))
    # the refused request is the caller's fault and is not judged: all six served within 5 s
    assert "ttft ≤ 5.00 s" in slo and "90 %" in slo and "100.00 %" in slo and "met" in slo
    keys = lines[lines.index("## Top consumers: keys") + 4]
    assert "| master |" in keys and "| 6 |" in keys


def test_weekly_report_as_html_with_inline_charts(gateway: str, tmp_path: Path) -> None:
    out = tmp_path / "week.html"
    result = runner.invoke(
        app,
        [
            "report",
            "weekly",
            "--gateway",
            gateway,
            "--master-key",
            MASTER_KEY,
            "--format",
            "html",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") >= 4
    assert "<script" not in html and "src=" not in html and "<link" not in html
    assert "SLO compliance against target" in html and "chat/dead/m#0" in html


def test_report_endpoint_rejects_bad_ranges(gateway: str) -> None:
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=gateway + "/admin", headers=auth) as client:
        assert client.get("/reports/summary", params={"bucket": "5m"}).status_code == 400
        assert client.get("/reports/summary", params={"since": "1h", "until": "2h"}).status_code == 400
        assert client.get("/reports/summary", params={"since": "365d", "bucket": "1h"}).status_code == 400
        hourly = client.get("/reports/summary", params={"since": "2h", "bucket": "1h"}).json()
        assert hourly["bucket_s"] == 3600 and hourly["totals"]["requests"] == 7
        assert httpx.get(gateway + "/admin/reports/summary").status_code == 401


def test_an_empty_report_renders() -> None:
    empty = {
        "since": "2025-01-01T00:00:00+00:00",
        "until": "2025-01-08T00:00:00+00:00",
        "bucket_s": 86400,
        "totals": {
            "requests": 0,
            "errors": 0,
            "server_errors": 0,
            "fallbacks": 0,
            "cost": 0.0,
            "tokens": 0,
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
        },
        "models": [],
        "failing_deployments": [],
        "consumers": {"keys": [], "teams": []},
    }
    assert "_nothing in this period_" in to_markdown(empty)
    assert "</html>" in to_html(empty)
