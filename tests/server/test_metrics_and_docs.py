"""``/metrics`` can require a bearer token, and the admin API's docs can be public, master-key only
or not served at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from interlock.sim import SimServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway, simple_config

TOKEN = "scrape-token-0123456789"
DOC_PATHS = ("/admin/docs", "/admin/openapi.json")


@contextmanager
def configured(sim: SimServerThread, tmp: Path, extra: str) -> Iterator[Gateway]:
    with running_gateway(simple_config({"sim-a": sim.base_url}, tmp, extra)) as gw:
        yield gw


def test_metrics_with_a_token_need_it(sim: SimServerThread, tmp_path: Path) -> None:
    with configured(sim, tmp_path, f"telemetry: {{metrics_token: {TOKEN}}}") as gw:
        missing = httpx.get(gw.url + "/metrics")
        wrong = httpx.get(gw.url + "/metrics", headers={"Authorization": "Bearer scrape-token-0123456780"})
        master = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"})
        right = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    for refused in (missing, wrong, master):
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["type"] == "authentication_error"
        assert "interlock_" not in refused.text
    assert right.status_code == 200 and "interlock_" in right.text


def test_metrics_without_a_token_stay_open(gateway: Gateway) -> None:
    assert httpx.get(gateway.url + "/metrics").status_code == 200


@pytest.mark.parametrize(
    ("mode", "anonymous", "with_master"), [("public", 200, 200), ("admin", 401, 200), ("off", 401, 404)]
)
def test_docs_modes(
    sim: SimServerThread, tmp_path: Path, mode: str, anonymous: int, with_master: int
) -> None:
    with configured(sim, tmp_path, f"server: {{docs: {mode}}}") as gw:
        for path in DOC_PATHS:
            assert httpx.get(gw.url + path).status_code == anonymous, path
            master = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {MASTER_KEY}"})
            assert master.status_code == with_master, path
        # whatever the docs mode, the API itself is master-key only
        assert httpx.get(gw.url + "/admin/keys").status_code == 401
