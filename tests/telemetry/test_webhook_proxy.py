"""Alert webhooks leave through the proxy the environment names, as the upstream client's requests do."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from interlock.config.schema import AlertsSpec, WebhookSpec
from interlock.telemetry.alerts import Alert, AlertMonitor, ModelCounts
from tests.providers.raw_upstream import forward_proxy
from tests.telemetry.receivers import webhook_receiver

ALERT = Alert("error_rate", "chat", "firing", 0.5, 0.05, 300.0, 40, {})


def no_traffic() -> dict[str, ModelCounts]:
    return {}


@pytest.mark.parametrize(
    ("host", "no_proxy", "proxied"),
    [("hooks.test", "", True), ("localhost", "localhost", False)],
    ids=["through-the-proxy", "exempted-by-no-proxy"],
)
async def test_webhooks_honour_http_proxy_and_no_proxy(
    monkeypatch: pytest.MonkeyPatch, host: str, no_proxy: str, proxied: bool
) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with webhook_receiver() as (url, received):
        async with forward_proxy() as (proxy, proxy_port):
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
            monkeypatch.setenv("NO_PROXY", no_proxy)
            hook = url.replace("127.0.0.1", host)  # the proxy resolves names under .test to this machine
            spec = AlertsSpec(webhooks=[WebhookSpec(url=hook)])
            alerts = AlertMonitor(spec, no_traffic, CollectorRegistry())
            await alerts.notify([ALERT])
            await alerts.stop()
    assert alerts.sent == 1 and received.bodies[0]["alert"] == "error_rate"
    heads = [head.split(b"\r\n", 1)[0] for head in proxy.heads]
    assert heads == ([b"POST " + hook.encode() + b" HTTP/1.1"] if proxied else [])
