"""Start real gateways over loopback HTTP for tests: a simulator upstream, SQLite in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai

from interlock.config.loader import parse_settings
from interlock.server.app import create_app
from interlock.server.runtime import Runtime
from interlock.server.thread import ServerThread

MASTER_KEY = "sk-test-master-Jq7vR2xLp9WcZ4mTb8NfK3hY"


@dataclass
class Gateway:
    url: str
    runtime: Runtime
    master_key: str = MASTER_KEY
    _clients: list[openai.OpenAI | anthropic.Anthropic] = field(default_factory=list)

    def openai(self, key: str | None = None, **options: Any) -> openai.OpenAI:
        """An OpenAI SDK client for this gateway, closed when the gateway stops."""
        options.setdefault("max_retries", 0)
        client = openai.OpenAI(base_url=self.base_url, api_key=key or self.master_key, **options)
        self._clients.append(client)
        return client

    def anthropic(self, key: str | None = None, **options: Any) -> anthropic.Anthropic:
        """An Anthropic SDK client for this gateway, closed when the gateway stops."""
        options.setdefault("max_retries", 0)
        client = anthropic.Anthropic(base_url=self.url, api_key=key or self.master_key, **options)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.master_key}"})

    def create_key(self, name: str = "test") -> tuple[str, str]:
        """A new virtual key: (id, plaintext)."""
        with self.admin() as client:
            response = client.post("/admin/keys", json={"name": name})
            response.raise_for_status()
            body = response.json()
            return body["id"], body["key"]


def simple_config(upstreams: dict[str, str], tmp: Path, extra: str = "") -> str:
    """A config with one provider per upstream, and models ``chat`` (all upstreams) and ``embed``."""
    providers = "\n".join(f"  {name}: {{kind: openai, base_url: {url}}}" for name, url in upstreams.items())
    chat = "\n".join(
        f"      - {{provider: {name}, model: sim-small, price: {{input: 1.0, output: 2.0}}}}"
        for name in upstreams
    )
    first = next(iter(upstreams))
    return f"""
master_key: {MASTER_KEY}
store: sqlite:///{tmp}/interlock.db
providers:
{providers}
models:
  chat:
    deployments:
{chat}
  embed:
    kind: embeddings
    deployments:
      - {{provider: {first}, model: sim-embed, price: {{input: 0.5}}}}
{extra}
"""


@contextmanager
def running_gateway(config_text: str) -> Iterator[Gateway]:
    settings = parse_settings(config_text, env={})
    runtime = Runtime.build(settings)
    with ServerThread(create_app(settings, runtime)) as server:
        gateway = Gateway(url=server.url, runtime=runtime)
        try:
            yield gateway
        finally:
            gateway.close_clients()


@contextmanager
def slow_stream(gateway: Gateway, sim_url: str, max_tokens: int = 400) -> Iterator[Iterator[str]]:
    """Open a stream that the simulator sends slowly (50 ms a chunk); yield its lines. Leaving the
    ``with`` block disconnects the client mid-stream."""
    httpx.post(sim_url + "/sim/faults", json={"slow_stream_ms": 50})
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "a long story"}],
        "stream": True,
        "max_tokens": max_tokens,
    }
    with httpx.stream(
        "POST",
        gateway.base_url + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gateway.master_key}"},
    ) as response:
        yield response.iter_lines()
