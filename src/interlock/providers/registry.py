"""Build provider adapters from settings."""

from __future__ import annotations

from collections.abc import Mapping

from interlock.config.schema import ProviderSpec, revealed_headers
from interlock.providers.anthropic import AnthropicProvider
from interlock.providers.base import Provider
from interlock.providers.http import Timeouts
from interlock.providers.openai import OpenAIProvider

__all__ = ["build_provider", "build_providers"]


def build_provider(name: str, spec: ProviderSpec) -> Provider:
    """One adapter for one configured provider."""
    timeouts = Timeouts(
        connect_s=spec.connect_timeout_s, read_s=spec.read_timeout_s, keepalive_s=spec.keepalive_s
    )
    api_key = spec.api_key.get_secret_value() if spec.api_key else None
    base_url = spec.base_url or ""
    headers = revealed_headers(spec.headers)
    proxy = spec.proxy.get_secret_value() if spec.proxy else None
    if spec.kind == "anthropic":
        return AnthropicProvider(
            name, base_url, api_key=api_key, headers=headers, timeouts=timeouts, proxy=proxy
        )
    return OpenAIProvider(name, base_url, api_key=api_key, headers=headers, timeouts=timeouts, proxy=proxy)


def build_providers(specs: Mapping[str, ProviderSpec]) -> dict[str, Provider]:
    return {name: build_provider(name, spec) for name, spec in specs.items()}
