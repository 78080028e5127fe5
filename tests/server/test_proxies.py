"""Behind a TLS-terminating proxy: ``X-Forwarded-Proto`` is believed only from trusted proxies; then
the dashboard's cookie is ``Secure`` and, when asked for, responses carry HSTS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from interlock.config.loader import ConfigError, parse_settings
from interlock.server.app import create_app
from interlock.server.proxies import proxy_options
from interlock.server.runtime import Runtime
from interlock.server.thread import ServerThread
from interlock.sim import SimServerThread
from tests.gateway_harness import MASTER_KEY, simple_config

HTTPS = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}


@contextmanager
def gateway(sim: SimServerThread, tmp_path: Path, server: str) -> Iterator[str]:
    settings = parse_settings(simple_config({"sim-a": sim.base_url}, tmp_path, f"server: {server}\n"), env={})
    app = create_app(settings, Runtime.build(settings))
    with ServerThread(app, **proxy_options(settings.server)) as thread:
        yield thread.url


def sign_in(url: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        response = client.post("/ui/login", data={"key": MASTER_KEY}, headers=headers)
    assert response.status_code == 303, response.text
    return response


def test_a_trusted_proxy_makes_cookies_secure_and_adds_hsts(sim: SimServerThread, tmp_path: Path) -> None:
    with gateway(sim, tmp_path, "{trusted_proxies: [127.0.0.1], hsts: true, hsts_max_age_s: 600}") as url:
        over_https = sign_in(url, HTTPS)
        assert "secure" in over_https.headers["set-cookie"].lower()
        assert over_https.headers["strict-transport-security"] == "max-age=600; includeSubDomains"
        plain = sign_in(url, {})
        assert "secure" not in plain.headers["set-cookie"].lower()
        assert "strict-transport-security" not in plain.headers


@pytest.mark.parametrize("server", ["{trusted_proxies: [10.0.0.0/8], hsts: true}", "{hsts: true}"])
def test_forwarded_headers_from_anyone_else_are_ignored(
    sim: SimServerThread, tmp_path: Path, server: str
) -> None:
    with gateway(sim, tmp_path, server) as url:
        spoofed = sign_in(url, HTTPS)
        assert "secure" not in spoofed.headers["set-cookie"].lower()
        assert "strict-transport-security" not in spoofed.headers


def test_a_trusted_proxy_entry_must_be_an_address_or_network() -> None:
    with pytest.raises(ConfigError, match="not an IP address or network"):
        parse_settings("server: {trusted_proxies: [proxy.internal]}\n", env={})
    assert proxy_options(
        parse_settings("server: {trusted_proxies: ['10.0.0.0/8', '::1']}\n", env={}).server
    ) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.0/8,::1",
    }
