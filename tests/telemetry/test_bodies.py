"""Bodies are kept only when enabled, with secrets redacted; retention deletes old records."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from interlock.sim import SimServerThread
from interlock.store import RequestRecord, Store
from interlock.telemetry.redact import redact, redact_text
from interlock.telemetry.retention import keep_retention
from tests.gateway_harness import Gateway, running_gateway, simple_config

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"


def test_redaction_patterns() -> None:
    text = redact_text(
        f"key {SECRET} and Bearer abcdefghijklmnopqrstuvwxyz and password: hunter2 AKIAABCDEFGHIJKLMNOP"
    )
    assert (
        SECRET not in text
        and "hunter2" not in text
        and "AKIA" not in text
        and "abcdefghijklmnopqrstuvwxyz" not in text
    )
    assert text.count("[REDACTED]") == 4
    nested = redact({"messages": [{"content": f"use {SECRET}"}], "n": 2}, limit=10)
    assert nested == {"messages": [{"content": "use [REDAC…[truncated]"}], "n": 2}
    assert redact({"messages": [{"content": '{"api_key": "k-123"}'}], "api_key": "x"}) == {
        "messages": [{"content": '{"api_key": [REDACTED]}'}],
        "api_key": "[REDACTED]",
    }


def read_rows(gateway: Gateway) -> list[RequestRecord]:
    async def read() -> list[RequestRecord]:
        store = await Store.open(gateway.runtime.settings.store, migrate=False)
        try:
            return await store.requests.query(limit=10)
        finally:
            await store.close()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = asyncio.run(read())
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError("no request record written")


def test_bodies_are_stored_redacted_when_enabled(sim: SimServerThread, tmp_path: Path) -> None:
    config = simple_config({"sim-a": sim.base_url}, tmp_path) + "logging: {store_bodies: true}\n"
    with running_gateway(config) as gw:
        gw.openai().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": f"my key is {SECRET}"}]
        )
        (row,) = read_rows(gw)
    assert row.extra["request_body"]["messages"][0]["content"] == "my key is [REDACTED]"
    assert row.extra["response_body"]["choices"][0]["message"]["content"]


def test_bodies_are_not_stored_by_default(gateway: Gateway) -> None:
    gateway.openai().chat.completions.create(model="chat", messages=[{"role": "user", "content": "private"}])
    (row,) = read_rows(gateway)
    assert "request_body" not in row.extra and "response_body" not in row.extra


async def test_retention_deletes_old_records(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path}/r.db")
    try:
        now = datetime.now(UTC)
        records = [
            RequestRecord(
                request_id=f"r{i}",
                created_at=now - timedelta(days=age),
                model="m",
                operation="chat",
                stream=False,
                status=200,
                latency_ms=1.0,
                overhead_ms=0.1,
            )
            for i, age in enumerate((0, 5, 40, 90))
        ]
        await store.requests.insert_many(records)
        task = asyncio.create_task(keep_retention(store.requests, days=30, every_s=3600))
        for _ in range(100):
            if len(await store.requests.query(limit=10)) == 2:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert sorted(r.request_id for r in await store.requests.query(limit=10)) == ["r0", "r1"]
    finally:
        await store.close()
