"""``interlock report spend``: spend by key, model, pool and team, as a table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.sim import SimServerThread
from tests.cli.cli import interlock, table_rows
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

CONFIG = """
master_key: {master}
store: sqlite:///{tmp}/interlock.db
providers:
  sim: {{kind: openai, base_url: {url}}}
pools:
  gpu: {{labels: {{hw: gpu}}}}
  cpu: {{labels: {{hw: cpu}}}}
models:
  chat:
    deployments:
      - {{provider: sim, model: sim-small, pool: gpu, price: {{input: 1.0, output: 2.0}}}}
  mini:
    deployments:
      - {{provider: sim, model: sim-mini, pool: cpu, price: {{input: 0.1, output: 0.2}}}}
"""
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def busy(sim: SimServerThread, tmp_path: Path) -> Iterator[tuple[Gateway, dict[str, str]]]:
    with running_gateway(CONFIG.format(master=MASTER_KEY, tmp=tmp_path, url=sim.base_url)) as gateway:
        ids = {}
        for name, model, count in (("alice", "chat", 3), ("bob", "mini", 2)):
            key_id, key = gateway.create_key(name)
            ids[name] = key_id
            for _ in range(count):
                gateway.openai(key).chat.completions.create(model=model, messages=HELLO, max_tokens=4)
        _wait_logged(gateway, 5)
        yield gateway, ids


def _wait_logged(gateway: Gateway, count: int) -> None:
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10
        while len(admin.get("/admin/requests", params={"limit": 100}).json()["data"]) < count:
            assert time.monotonic() < deadline, "the requests were never logged"
            time.sleep(0.05)


def _json(gateway: Gateway, by: str) -> dict[str, object]:
    result = interlock("report", "spend", "--by", by, "--format", "json", gateway=gateway.url)
    assert result.exit_code == 0, result.output
    found: dict[str, object] = json.loads(result.output)
    return found


def test_spend_by_key_model_and_pool_add_up_to_the_total(busy: tuple[Gateway, dict[str, str]]) -> None:
    gateway, ids = busy
    by_key = _json(gateway, "key")
    rows = {row["name"]: row for row in by_key["rows"]}  # type: ignore[attr-defined]
    assert rows[ids["alice"]]["requests"] == 3 and rows[ids["bob"]]["requests"] == 2
    assert rows[ids["alice"]]["cost_usd"] > rows[ids["bob"]]["cost_usd"] > 0
    total = by_key["total"]
    for by in ("model", "pool", "team"):
        report = _json(gateway, by)
        assert report["total"] == total
        assert sum(r["cost_usd"] for r in report["rows"]) == pytest.approx(total["cost_usd"])  # type: ignore[index,attr-defined]
        assert sum(r["requests"] for r in report["rows"]) == total["requests"]  # type: ignore[index,attr-defined]
    pools = {row["name"]: row["requests"] for row in _json(gateway, "pool")["rows"]}  # type: ignore[attr-defined]
    assert pools == {"gpu": 3, "cpu": 2}
    teams = {row["name"] for row in _json(gateway, "team")["rows"]}  # type: ignore[attr-defined]
    assert teams == {"(none)"}  # these keys belong to no team


def test_spend_as_csv_and_as_a_table(busy: tuple[Gateway, dict[str, str]]) -> None:
    gateway, _ = busy
    result = interlock("report", "spend", "--by", "model", "--format", "csv", gateway=gateway.url)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["model"] for r in rows] == ["chat", "mini", "total"]
    assert rows[-1]["requests"] == "5"
    table = interlock("report", "spend", "--by", "pool", "--since", "1h", gateway=gateway.url)
    assert table.exit_code == 0, table.output
    assert [row[0] for row in table_rows(table.output)] == ["gpu", "cpu", "total"]


def test_a_bad_grouping_or_range_is_a_clear_error(busy: tuple[Gateway, dict[str, str]]) -> None:
    gateway, _ = busy
    with gateway.admin() as admin:
        bad = admin.get("/admin/reports/spend", params={"by": "planet"})
        assert bad.status_code == 400 and "'by' must be one of" in bad.json()["error"]["message"]
        backwards = admin.get("/admin/reports/spend", params={"since": "1h", "until": "2h"})
        assert backwards.status_code == 400 and "'until'" in backwards.json()["error"]["message"]
    cli = interlock("report", "spend", "--by", "planet", gateway=gateway.url)
    assert cli.exit_code != 0
