"""The immutable routing state: models, their deployments and weights.

Built once from settings; a reload swaps the whole snapshot behind one reference, so a request never
sees half a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from interlock.config.schema import DeploymentSpec, ModelSpec, TierSpec

__all__ = ["Deployment", "ModelRoute", "RoutingSnapshot", "SnapshotRef"]

_DEFAULT_SPEC = ModelSpec(deployments=[DeploymentSpec(provider="-", model="-")])


@dataclass(frozen=True, slots=True)
class Deployment:
    """One way to serve a public model: a provider, its upstream model name and what it costs."""

    id: str
    model_name: str
    provider: str
    upstream_model: str
    pool: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    price_input: float = 0.0
    """USD per 1M prompt tokens."""
    price_output: float = 0.0
    """USD per 1M completion tokens."""
    price_cached_input: float | None = None
    """USD per 1M cached prompt tokens; None means the input price."""
    weight: float = 1.0
    max_concurrency: int | None = None
    context_window: int | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """USD cost of one request at this deployment's prices."""
        cached = min(cached_tokens, prompt_tokens)
        cached_price = self.price_input if self.price_cached_input is None else self.price_cached_input
        return (
            (prompt_tokens - cached) * self.price_input
            + cached * cached_price
            + completion_tokens * self.price_output
        ) / 1_000_000.0


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A public model name, the deployments that can serve it, and how it routes among them."""

    name: str
    deployments: tuple[Deployment, ...]
    kind: str = "chat"
    description: str = ""
    owned_by: str = "interlock"
    fallbacks: tuple[str, ...] = ()
    context_window: int | None = None
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    spec: ModelSpec = field(default_factory=lambda: _DEFAULT_SPEC)
    """The validated routing, retry, breaker, timeout, hedge and concurrency settings."""

    def session_header(self) -> str | None:
        """The header naming the caller's session, when this model routes by session."""
        routing = self.spec.routing
        return routing.session_header if routing.strategy == "session" else None


@dataclass(frozen=True, slots=True)
class RoutingSnapshot:
    """Everything routing reads, as one immutable value."""

    models: Mapping[str, ModelRoute]
    created: int = 0
    tiers: Mapping[str, TierSpec] = field(default_factory=lambda: MappingProxyType({}))
    """Tiered aliases (``auto``) by name."""


class SnapshotRef:
    """The one mutable reference to the current snapshot; replaced atomically."""

    __slots__ = ("current",)

    def __init__(self, snapshot: RoutingSnapshot) -> None:
        self.current = snapshot

    def swap(self, snapshot: RoutingSnapshot) -> RoutingSnapshot:
        """Install ``snapshot`` and return the one it replaced."""
        old, self.current = self.current, snapshot
        return old
