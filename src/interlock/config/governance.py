"""The ``redis:``, ``budgets:`` and ``limits:`` sections of the settings (docs/config.md).

Amounts are validated where they are read: no negative, zero or absurd limit (over a billion USD,
a billion requests or a trillion tokens a minute), thresholds strictly increasing, one rule per
scope (and period). Every message names the field it is about.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from interlock.config.secrets import mask_url_password

__all__ = [
    "AnomaliesSpec",
    "BudgetRuleSpec",
    "BudgetsSpec",
    "LimitRuleSpec",
    "LimitsSpec",
    "RedisSpec",
]

MAX_USD = 1_000_000_000.0
"""Also ``interlock.governance.money.MAX_USD``: every amount stays exact as integer micro-dollars."""

Scope = Literal["global", "org", "team", "user", "key"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisSpec(_Strict):
    """Where limits, budgets and deployment state are shared between processes and instances."""

    url: SecretStr
    """``redis://[user:password@]host:port/db``, ``rediss://…`` (TLS) or ``unix:///path``; a secret
    (it may hold a password)."""
    prefix: str = Field("interlock:", min_length=1, max_length=64)
    """Every key starts with this. ``{interlock}:`` puts every key in one Redis Cluster slot."""
    connect_timeout_s: float = Field(0.5, gt=0, le=30)
    timeout_s: float = Field(0.25, gt=0, le=30)
    """A command slower than this counts as Redis being unreachable (the fallback answers)."""
    max_connections: int = Field(64, ge=1, le=10_000)
    """Accepted for compatibility and unused: each process keeps one pipelined connection to Redis
    for the counters (``governance/resp.py``)."""
    fallback_processes: int | None = Field(None, ge=1, le=100_000)
    """While Redis is unreachable each process enforces 1/this of every limit: the number of gateway
    processes in all (instances × workers). None: this instance's ``server.workers``."""
    reconnect_interval_s: float = Field(1.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("prefix")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(c.isspace() for c in value) or not value.isprintable():
            raise ValueError("must not contain spaces or control characters")
        return value

    def shown_url(self) -> str:
        """The URL with its password masked, for logs."""
        return mask_url_password(self.url.get_secret_value())


def _scope_id(scope: str, id_: str) -> str | None:
    if scope == "global" and id_ != "*":
        return "id: a global rule applies to everyone; leave id out"
    if not id_ or any(c.isspace() for c in id_):
        return "id: must be a non-empty id without spaces, or * (each member separately)"
    return None


class BudgetRuleSpec(_Strict):
    """A spend limit for one scope and period."""

    name: str = Field(min_length=1, max_length=128)
    scope: Scope
    id: str = "*"
    """The org, team, user or key id; ``*``: each one separately."""
    model: str | None = Field(None, min_length=1)
    """Only requests for this model count (None: every model)."""
    period: Literal["day", "week", "month", "total"]
    limit_usd: float = Field(gt=0, le=MAX_USD)
    thresholds_pct: list[int] | None = None
    """Report when settled spend reaches these percentages (None: ``budgets.thresholds_pct``)."""
    action: Literal["block", "throttle", "downgrade"] = "block"

    @field_validator("thresholds_pct")
    @classmethod
    def _thresholds(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else _check_thresholds(value)

    @model_validator(mode="after")
    def _id_fits_scope(self) -> BudgetRuleSpec:
        problem = _scope_id(self.scope, self.id)
        if problem:
            raise ValueError(problem)
        return self


def _check_thresholds(value: list[int]) -> list[int]:
    if len(value) > 10:
        raise ValueError("at most 10 thresholds")
    if any(not 1 <= pct <= 1000 for pct in value):
        raise ValueError("each threshold is a percentage from 1 to 1000")
    if any(a >= b for a, b in pairwise(value)):
        raise ValueError("thresholds must be strictly increasing")
    return value


class BudgetsSpec(_Strict):
    """Spend limits, enforced by reserving each request's maximum cost before it runs."""

    reservation_ttl_s: float = Field(900, ge=1, le=86_400)
    """A reservation not settled by then lapses (a crashed process's requests): longer than the
    slowest request."""
    thresholds_pct: list[int] = Field(default_factory=lambda: [70, 100, 120])
    max_request_usd: float | None = Field(None, gt=0, le=MAX_USD)
    """No single request may cost more than this (its maximum cost, before it runs)."""
    key_max_request_usd: dict[str, float] = Field(default_factory=dict)
    """The same cap per API key id, replacing ``max_request_usd`` for that key."""
    default_output_tokens: int = Field(4096, ge=1, le=10_000_000)
    """A request that sets no ``max_tokens`` (and whose model has no ``context_window``) is reserved
    for this many output tokens."""
    throttle_per_min: int = Field(6, ge=1, le=1_000_000)
    """Past the limit of a budget whose action is ``throttle``: requests per minute still let
    through, per budget and subject (counted, not blocked)."""
    rules: list[BudgetRuleSpec] = Field(default_factory=list)

    @field_validator("thresholds_pct")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        return _check_thresholds(value)

    @field_validator("key_max_request_usd")
    @classmethod
    def _caps(cls, value: dict[str, float]) -> dict[str, float]:
        for key_id, usd in value.items():
            if not 0 < usd <= MAX_USD:
                raise ValueError(f"{key_id}: must be more than 0 and at most {MAX_USD:,.0f} USD")
        return value

    @model_validator(mode="after")
    def _one_rule_each(self) -> BudgetsSpec:
        names = Counter(rule.name for rule in self.rules)
        scopes = Counter((r.scope, r.id, r.model, r.period) for r in self.rules)
        for index, rule in enumerate(self.rules):
            if names[rule.name] > 1:
                raise ValueError(f"rules[{index}].name: '{rule.name}' is used by more than one budget")
            if scopes[(rule.scope, rule.id, rule.model, rule.period)] > 1:
                raise ValueError(
                    f"rules[{index}]: another budget has the same scope, id, model and period"
                    f" ({rule.scope} {rule.id} {rule.model or 'any model'} {rule.period})"
                )
        return self


class LimitRuleSpec(_Strict):
    """Rate and concurrency limits for one scope; at least one measure is set."""

    name: str | None = Field(None, min_length=1, max_length=128)
    """For messages and metrics; default ``<scope>:<id>[:<model>]``."""
    scope: Scope
    id: str = "*"
    model: str | None = Field(None, min_length=1)
    requests_per_min: int | None = Field(None, ge=1, le=1_000_000_000)
    tokens_per_min: int | None = Field(None, ge=1, le=1_000_000_000_000)
    cost_per_min_usd: float | None = Field(None, gt=0, le=MAX_USD)
    concurrent: int | None = Field(None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _something_limited(self) -> LimitRuleSpec:
        problem = _scope_id(self.scope, self.id)
        if problem:
            raise ValueError(problem)
        measures = (self.requests_per_min, self.tokens_per_min, self.cost_per_min_usd, self.concurrent)
        if all(m is None for m in measures):
            raise ValueError(
                "set at least one of requests_per_min, tokens_per_min, cost_per_min_usd, concurrent"
            )
        return self

    def label(self) -> str:
        return self.name or ":".join(p for p in (self.scope, self.id, self.model) if p)


class LimitsSpec(_Strict):
    """Rate limits (per minute, as token buckets) and concurrent-request limits."""

    lease_ttl_s: float = Field(900, ge=1, le=86_400)
    """A concurrency slot not freed by then lapses (a crashed process's requests)."""
    local_counters_file: str = Field(".interlock/counters.db", min_length=1)
    """Without Redis and with several workers, limits and budgets are counted in this SQLite file."""
    rules: list[LimitRuleSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_rule_each(self) -> LimitsSpec:
        scopes = Counter((r.scope, r.id, r.model) for r in self.rules)
        labels = Counter(r.label() for r in self.rules)
        for index, rule in enumerate(self.rules):
            if scopes[(rule.scope, rule.id, rule.model)] > 1:
                raise ValueError(
                    f"rules[{index}]: another limit has the same scope, id and model"
                    f" ({rule.scope} {rule.id} {rule.model or 'any model'})"
                )
            if labels[rule.label()] > 1:
                raise ValueError(f"rules[{index}].name: '{rule.label()}' is used by more than one limit")
        return self


class AnomaliesSpec(_Strict):
    """Spend anomalies: a key's or team's recent spend against the same hour of the days before."""

    enabled: bool = True
    interval_s: float = Field(300, ge=5, le=86_400)
    """How often the request log is read (a few grouped queries each time)."""
    window_s: float = Field(3600, ge=60, le=86_400)
    """The recent window; the baseline is the same window at the same time of day on earlier days."""
    baseline_days: int = Field(7, ge=1, le=90)
    ratio: float = Field(1.5, gt=1, le=1000)
    """Alert when recent spend exceeds this multiple of the baseline's daily average."""
    min_usd: float = Field(1.0, ge=0, le=MAX_USD)
    """…and is at least this much (a key going from 1 cent to 3 is not an incident)."""
    revoke_keys: bool = False
    """Also revoke a key whose spend is anomalous (audited; a new key must be issued)."""
