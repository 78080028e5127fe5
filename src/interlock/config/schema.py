"""The settings schema: what a config file may say. Unknown keys are errors, never ignored."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from interlock.config.governance import AnomaliesSpec, BudgetsSpec, LimitsSpec, RedisSpec
from interlock.config.secrets import hash_secret, is_sha256_hex, mask_url_password, master_key_problem
from interlock.core.headers import header_problem

__all__ = [
    "BodyLimits",
    "BudgetsSpec",
    "DeploymentSpec",
    "LimitsSpec",
    "LoggingSpec",
    "ModelSpec",
    "PoolSpec",
    "Price",
    "ProviderSpec",
    "RedisSpec",
    "ServerSpec",
    "Settings",
    "TelemetrySpec",
    "revealed_headers",
]


def revealed_headers(headers: Mapping[str, SecretStr]) -> dict[str, str]:
    """Header values as plain text, to put on the wire (and nowhere else)."""
    return {name: value.get_secret_value() for name, value in headers.items()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSpec(_Strict):
    """An upstream endpoint and its credentials."""

    kind: Literal["openai", "anthropic"]
    base_url: str | None = None
    api_key: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra headers sent upstream; their values are secrets (they often carry credentials)."""
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0)
    keepalive_s: float = Field(4.0, gt=0)
    proxy: SecretStr | None = None
    """An http:// proxy for this provider (its URL may hold a password); unset, HTTPS_PROXY /
    HTTP_PROXY / NO_PROXY apply."""
    health_check_interval_s: float | None = Field(None, gt=0)
    """Probe the provider's model list this often; None (the default) turns active checks off."""

    @model_validator(mode="after")
    def _default_base_url(self) -> ProviderSpec:
        if self.base_url is None:
            default = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
            object.__setattr__(self, "base_url", default[self.kind])
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018  # raises on a port that is not a number from 0 to 65535
        except ValueError:
            raise ValueError("has an invalid port") from None
        if not parts.hostname:
            raise ValueError("has no host")
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value and value.get_secret_value():
            parts = urlsplit(value.get_secret_value())
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError("must be an http:// URL with a host (http://[user:password@]host:port)")
        return value

    @field_validator("headers")
    @classmethod
    def _header_text(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, text in value.items():
            problem = header_problem(name, text.get_secret_value())
            if problem:
                raise ValueError(problem)
        return value


class PoolSpec(_Strict):
    """A nodepool: a named group of deployments with labels (hardware, region, cost class …)."""

    labels: dict[str, str] = Field(default_factory=dict)
    description: str = ""


class Price(_Strict):
    """USD per one million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)


class DeploymentSpec(_Strict):
    """One way to serve a model: a provider, the upstream model name, where it runs, what it costs."""

    provider: str
    model: str
    pool: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    price: Price = Field(default_factory=Price)
    weight: float = Field(1.0, gt=0)
    max_concurrency: int | None = Field(None, gt=0)
    context_window: int | None = Field(None, gt=0)


class RoutingSpec(_Strict):
    """How a model picks among its deployments."""

    strategy: Literal[
        "p2c-ewma", "weighted", "round-robin", "least-outstanding", "cost", "session", "prefix"
    ] = "p2c-ewma"
    session_header: str = "x-session-id"
    ttft_slo_ms: float | None = Field(None, gt=0)
    """For ``cost``: deployments slower than this (peak-EWMA time to first token) are not chosen."""
    prefix_block_chars: int = Field(64, ge=8)
    prefix_match_threshold: float = Field(0.3, ge=0, le=1)
    prefix_balance_abs: int = Field(32, ge=0)
    prefix_balance_rel: float = Field(1.5, ge=1)
    resume_streams: bool = True
    """A stream that breaks after its first token (the upstream died, hung or timed out) goes on
    from where it stopped on another deployment, instead of ending with an error event."""


class TimeoutSpec(_Strict):
    """Per-model time limits, in seconds."""

    first_token_s: float | None = Field(None, gt=0)
    """No first byte (complete answer, or first stream chunk) by then: the attempt fails."""
    total_s: float | None = Field(None, gt=0)
    """The whole request, every attempt and wait included."""


class RetrySpec(_Strict):
    max_attempts: int = Field(4, ge=1, le=20)
    base_delay_ms: float = Field(20, ge=0)
    max_delay_ms: float = Field(1000, ge=0)
    max_retry_after_s: float = Field(5, ge=0)
    budget_ratio: float = Field(0.2, ge=0, le=10)
    budget_window_s: float = Field(10, gt=0)
    budget_min_per_s: float = Field(2, ge=0)


class BreakerSpec(_Strict):
    window_s: float = Field(10, gt=0)
    min_calls: int = Field(10, ge=1)
    failure_rate: float = Field(0.5, gt=0, le=1)
    slow_call_ms: float | None = Field(None, gt=0)
    """A stream whose first token takes longer than this counts as slow."""
    slow_call_ratio: float | None = Field(5.0, gt=1)
    """A call this many times slower than the deployment's recent best for requests of its shape
    (first token for streams, time per output token for complete answers) counts as slow."""
    slow_call_rate: float = Field(0.8, gt=0, le=1)
    consecutive_failures: int = Field(5, ge=0)
    open_s: float = Field(5, gt=0)
    max_open_s: float = Field(60, gt=0)
    half_open_probes: int = Field(1, ge=1)
    probe_successes: int = Field(2, ge=1)


class HedgeSpec(_Strict):
    """Race a second deployment when the first has stalled: produced nothing (no first token, no
    answer) well past what requests of its shape have taken there lately."""

    enabled: bool = True
    stall_factor: float = Field(2.0, ge=1)
    """Hedge after this multiple of the recent time of requests of the same shape on the deployment
    (streams: time to first token for the prompt's size; complete answers: an answer of up to
    ``max_tokens``)."""
    quantile: float = Field(0.99, gt=0, lt=1)
    """For a stream, never before this quantile of the deployment's recent first-token times."""
    min_delay_ms: float = Field(500, ge=0)
    """Never before this: against a fast upstream, scheduling jitter must not double requests."""
    budget_ratio: float = Field(0.1, ge=0, le=1)
    """At most this share of requests may be hedged (over a 10 s window)."""


class ConcurrencySpec(_Strict):
    """Adaptive concurrency per deployment, learned from latency judged by request shape and from the
    upstream's own overload answers (docs/routing.md, "Capacity control")."""

    adaptive: bool = True
    initial_limit: int = Field(64, ge=1)
    min_limit: int = Field(2, ge=1)
    max_limit: int = Field(1024, ge=1)
    queue_size: int = Field(256, ge=0)
    queue_ratio: float = Field(0.1, ge=0)
    """At most this many waiters per unit of the limit (and at most ``queue_size``)."""
    max_wait_ms: float = Field(1000, ge=0)
    latency_tolerance: float = Field(2.0, gt=1)
    """The limit shrinks when streams' first tokens (or embeddings calls) run this many times slower
    than their recent best for requests of the same size."""
    answer_tolerance: float = Field(2.5, gt=1)
    """The same for complete answers' time per output token."""
    shed_tolerance: float = Field(1.8, gt=1)
    """While a deployment's limiter refuses requests anyway, it keeps those it admits within this
    multiple of their baseline."""
    batch_share: float = Field(0.75, gt=0, le=1)
    """Batch work starts only while fewer than this share of a deployment's limit are in flight: it
    uses spare capacity, and the rest stays free for interactive bursts."""


class SloSpec(_Strict):
    """Service-level objectives: a request meets them when it succeeds within each one set."""

    ttft_ms: float | None = Field(None, gt=0)
    tpot_ms: float | None = Field(None, gt=0)
    e2e_ms: float | None = Field(None, gt=0)
    target: float = Field(0.95, gt=0, le=1)
    """The share of requests that should meet the objectives (for compliance and burn alerts)."""


class ModelSpec(_Strict):
    """A public model name that clients ask for."""

    deployments: list[DeploymentSpec] = Field(min_length=1)
    kind: Literal["chat", "embeddings"] = "chat"
    description: str = ""
    fallbacks: list[str] = Field(default_factory=list)
    """Other models to try, in order, when every deployment of this one failed."""
    context_window: int | None = Field(None, gt=0)
    """Prompt plus completion tokens this model takes; prompts estimated to exceed it go to
    ``context_window_fallbacks`` before any upstream is asked."""
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[str] = Field(default_factory=list)
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    timeouts: TimeoutSpec = Field(default_factory=TimeoutSpec)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    hedge: HedgeSpec = Field(default_factory=HedgeSpec)
    concurrency: ConcurrencySpec = Field(default_factory=ConcurrencySpec)
    slo: SloSpec = Field(default_factory=SloSpec)


class TierSpec(_Strict):
    """A tiered alias: callers ask for it by name; each request goes to one of three models
    (docs/governance.md, "Model tiering")."""

    economy: str
    standard: str
    premium: str
    confidence: float = Field(0.6, ge=0, le=1)
    """A classification less sure than this goes one tier up."""
    budget_pressure: float = Field(0.8, gt=0, le=10)
    """When the tightest budget the caller draws on is used beyond this share, one tier down."""

    def model_for(self, tier: str) -> str:
        return {"economy": self.economy, "standard": self.standard, "premium": self.premium}[tier]


class BodyLimits(_Strict):
    """The largest request body each group of routes accepts, in bytes (413 beyond it)."""

    model: int = Field(32 * 1024 * 1024, gt=0)
    """``/v1/chat/completions``, ``/v1/embeddings``, ``/v1/messages``: images travel base64-encoded."""
    admin: int = Field(1024 * 1024, gt=0)
    """``/admin``."""
    other: int = Field(64 * 1024, gt=0)
    """``/ui`` (sign-in and operator forms) and every other route."""


class ServerSpec(_Strict):
    """The listening socket and what the gateway's edge accepts from a client."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    body_limits: BodyLimits = Field(default_factory=BodyLimits)
    header_timeout_s: float = Field(10.0, gt=0)
    """A request's headers must all arrive within this time of its first byte (or of the connection
    opening); otherwise 408 and the connection is closed (slowloris)."""
    body_timeout_s: float = Field(30.0, gt=0)
    """A request's body must all arrive within this time of its headers; otherwise 408 and close."""
    keepalive_s: float = Field(5.0, gt=0)
    """An idle keep-alive connection is closed after this long."""
    max_connections: int = Field(1024, ge=1)
    """Open connections per worker. At the cap, requests get 503; connections beyond it are closed
    as they are accepted."""
    max_headers: int = Field(100, ge=1)
    """Header lines per request (trailers count too); 431 beyond it."""
    max_header_bytes: int = Field(64 * 1024, ge=1024)
    """Bytes of the request line and headers together; 431 beyond it."""
    docs: Literal["public", "admin", "off"] = "public"
    """``/admin/docs`` and ``/admin/openapi.json``: open to anyone, master key only, or not served."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (``10.0.0.0/8``) of the proxies in front of the gateway: only their
    ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are believed; from anyone else they are ignored."""
    hsts: bool = False
    """Send ``Strict-Transport-Security`` on responses to https requests (TLS at the proxy counts)."""
    hsts_max_age_s: int = Field(31_536_000, gt=0)

    @field_validator("docs", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML reads a bare `off` as false
        return "off" if value is False else value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"'{entry}' is not an IP address or network (10.0.0.0/8)") from None
        return value


class LoggingSpec(_Strict):
    """Request log settings: the in-memory buffer in front of the database."""

    request_log: bool = True
    buffer_size: int = Field(10_000, gt=0)
    retention_days: int = Field(30, gt=0)
    store_bodies: bool = False
    """Keep request and response bodies in the log (secrets redacted, long strings cut)."""


class WebhookSpec(_Strict):
    """Where alerts are POSTed (JSON; Slack-compatible ``text`` included)."""

    url: SecretStr
    """A secret: chat webhooks (Slack, Teams …) carry their token in the URL."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class AlertsSpec(_Strict):
    """Alerts on SLO burn, fallback-rate and error-rate spikes, evaluated every ``interval_s``."""

    webhooks: list[WebhookSpec] = Field(default_factory=list)
    interval_s: float = Field(30, gt=0)
    cooldown_s: float = Field(900, ge=0)
    """A firing alert is repeated at most this often (per alert and model)."""
    min_requests: int = Field(20, ge=1)
    """Windows with fewer requests than this never fire."""
    slo_burn_rate: float | None = Field(14.4, gt=0)
    """Fire when the error budget burns this many times too fast over both the short (5 min) and
    the long window; None turns the rule off."""
    slo_long_window_s: float = Field(3600, gt=300)
    error_rate: float | None = Field(0.05, gt=0, le=1)
    """Fire when this share of requests failed with a 5xx over ``window_s``; None turns it off."""
    fallback_rate: float | None = Field(0.2, gt=0, le=1)
    """Fire when this share of requests needed more than one attempt over ``window_s``."""
    window_s: float = Field(300, gt=0)
    timeout_s: float = Field(5, gt=0)


class TelemetrySpec(_Strict):
    """Traces (OpenTelemetry over OTLP/HTTP) and alerts."""

    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint (``http://collector:4318`` or ``…/v1/traces``); unset: no tracing."""
    otlp_headers: dict[str, SecretStr] = Field(default_factory=dict)
    service_name: str = Field("interlock", min_length=1)
    sample_ratio: float = Field(1.0, ge=0, le=1)
    """Share of new traces recorded; a client's ``traceparent`` sampling decision is followed."""
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    metrics_token: SecretStr | None = None
    """When set, ``/metrics`` answers only requests with ``Authorization: Bearer <token>``."""

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class Settings(_Strict):
    """The whole configuration, parsed once at start-up."""

    master_key: SecretStr | None = None
    """The administrator's key: at least 32 random characters (weak keys are refused)."""
    master_key_sha256: SecretStr | None = None
    """Only the SHA-256 (hex) of the master key, for a gateway that should never hold the key itself
    (the workers of ``interlock up`` get this)."""
    store: str = "sqlite:///.interlock/interlock.db"
    """The database URL; shown (``repr``, logs) with its password masked."""
    server: ServerSpec = Field(default_factory=ServerSpec)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec)
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    pools: dict[str, PoolSpec] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    tiers: dict[str, TierSpec] = Field(default_factory=dict)
    """Tiered aliases by name (``auto: {economy: …, standard: …, premium: …}``)."""
    redis: RedisSpec | None = None
    """Shared counters (limits, budgets, deployment state); unset: counted on this machine."""
    budgets: BudgetsSpec = Field(default_factory=BudgetsSpec)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    anomalies: AnomaliesSpec = Field(default_factory=AnomaliesSpec)

    @field_validator("master_key")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        problem = master_key_problem(value.get_secret_value()) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("master_key_sha256")
    @classmethod
    def _a_digest(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            digest = value.get_secret_value().strip().lower()
            if not is_sha256_hex(digest):
                raise ValueError("must be a SHA-256 hex digest (64 hex digits)")
            value = SecretStr(digest)
        return value

    @model_validator(mode="after")
    def _one_master_key(self) -> Settings:
        if self.master_key is not None and self.master_key_sha256 is not None:
            raise ValueError("set master_key or master_key_sha256, not both")
        return self

    def master_key_hash(self) -> str | None:
        """The SHA-256 hex digest the master key is checked against; ``None`` when there is none."""
        if self.master_key is not None:
            return hash_secret(self.master_key.get_secret_value())
        return self.master_key_sha256.get_secret_value() if self.master_key_sha256 else None

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if name == "store" else value

    @model_validator(mode="after")
    def _references_resolve(self) -> Settings:
        for model_name, model in self.models.items():
            for index, deployment in enumerate(model.deployments):
                where = f"models.{model_name}.deployments[{index}]"
                if deployment.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none defined"
                    raise ValueError(
                        f"{where}.provider: unknown provider '{deployment.provider}' (known: {known})"
                    )
                if deployment.pool is not None and deployment.pool not in self.pools:
                    known = ", ".join(sorted(self.pools)) or "none defined"
                    raise ValueError(f"{where}.pool: unknown pool '{deployment.pool}' (known: {known})")
            for field_name in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
                for index, target in enumerate(getattr(model, field_name)):
                    if target not in self.models or target == model_name:
                        known = ", ".join(sorted(m for m in self.models if m != model_name)) or "none"
                        raise ValueError(
                            f"models.{model_name}.{field_name}[{index}]: '{target}' is not another "
                            f"configured model (known: {known})"
                        )
        self._tiers_resolve()
        return self

    def _tiers_resolve(self) -> None:
        chat = sorted(name for name, model in self.models.items() if model.kind == "chat")
        for alias, spec in self.tiers.items():
            if alias in self.models:
                raise ValueError(f"tiers.{alias}: the alias is also a model's name; pick another")
            for tier in ("economy", "standard", "premium"):
                target = spec.model_for(tier)
                if target not in chat:
                    raise ValueError(
                        f"tiers.{alias}.{tier}: '{target}' is not a configured chat model "
                        f"(known: {', '.join(chat) or 'none'})"
                    )
