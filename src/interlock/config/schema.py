"""The settings schema: what a config file may say. Unknown keys are errors, never ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "DeploymentSpec",
    "LoggingSpec",
    "ModelSpec",
    "PoolSpec",
    "Price",
    "ProviderSpec",
    "ServerSpec",
    "Settings",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSpec(_Strict):
    """An upstream endpoint and its credentials."""

    kind: Literal["openai", "anthropic"]
    base_url: str | None = None
    api_key: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0)
    keepalive_s: float = Field(4.0, gt=0)

    @model_validator(mode="after")
    def _default_base_url(self) -> ProviderSpec:
        if self.base_url is None:
            default = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
            object.__setattr__(self, "base_url", default[self.kind])
        return self

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
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


class ModelSpec(_Strict):
    """A public model name that clients ask for."""

    deployments: list[DeploymentSpec] = Field(min_length=1)
    kind: Literal["chat", "embeddings"] = "chat"
    description: str = ""


class ServerSpec(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)


class LoggingSpec(_Strict):
    """Request log settings: the in-memory buffer in front of the database."""

    request_log: bool = True
    buffer_size: int = Field(10_000, gt=0)
    retention_days: int = Field(30, gt=0)


class Settings(_Strict):
    """The whole configuration, parsed once at start-up."""

    master_key: SecretStr | None = None
    store: str = "sqlite:///.interlock/interlock.db"
    server: ServerSpec = Field(default_factory=ServerSpec)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    providers: dict[str, ProviderSpec] = Field(default_factory=dict)
    pools: dict[str, PoolSpec] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)

    @field_validator("master_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return value

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
        return self
