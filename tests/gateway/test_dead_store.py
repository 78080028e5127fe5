"""A dead database never fails a request: known keys keep working, request records are buffered and
dropped (counted), readiness turns 503, and an unverifiable key is a 503 rather than a wrong 401."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import running_gateway, simple_config
from tests.postgres import PG_HOST, PG_PORT, PostgresServer, run_private
from tests.tcp_proxy import TcpProxy

MESSAGES = [{"role": "user", "content": "still there?"}]


@pytest.fixture
def database(pg_server: PostgresServer) -> Iterator[str]:
    """A database of its own on the test PostgreSQL server; skips, saying why, where it is absent."""
    if pg_server.skip_reason is not None:
        pytest.skip(pg_server.skip_reason)
    name = run_private(pg_server.create_database())
    try:
        yield name
    finally:
        run_private(pg_server.drop_database(name))


def test_gateway_keeps_serving_when_postgres_dies(
    sim: SimServerThread, tmp_path: Path, pg_server: PostgresServer, database: str
) -> None:
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        store = f"postgresql://{pg_server.user}@127.0.0.1:{proxy.port}/{database}"
        config = simple_config({"sim-a": sim.base_url}, tmp_path).replace(
            f"store: sqlite:///{tmp_path}/interlock.db", f"store: {store}"
        )
        with running_gateway(config) as gw:
            _, key = gw.create_key("survivor")
            client = gw.openai(key)
            assert client.chat.completions.create(model="chat", messages=MESSAGES).choices  # type: ignore[arg-type]
            assert httpx.get(gw.url + "/readyz").status_code == 200

            proxy.cut()

            for stream in (False, True, False, True, False):
                result = client.chat.completions.create(model="chat", messages=MESSAGES, stream=stream)  # type: ignore[call-overload]
                assert list(result) if stream else result.choices
            ready = httpx.get(gw.url + "/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["checks"]["store"] == "unreachable"
            with pytest.raises(openai.APIStatusError) as caught:
                gw.openai("sk-il-a-key-no-process-has-seen").models.list()
            assert caught.value.status_code == 503 and "key store is unavailable" in caught.value.message
            writer = gw.runtime.writer
            assert writer is not None
            stats = writer.stats
            # the five records made after the cut are still buffered or were dropped: never written
            assert stats.submitted >= 6 and stats.pending + stats.dropped >= 5
            assert stats.written <= stats.submitted - 5
            assert "password" not in (stats.last_error or "")
