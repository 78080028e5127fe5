"""Secrets in settings: SecretStr everywhere (repr, str and errors never show one), the master key's
strength check, and the master key known by its hash only."""

from __future__ import annotations

import os

import pytest

from interlock.config.loader import (
    MASTER_KEY_ENV,
    MASTER_KEY_SHA256_ENV,
    ConfigError,
    export_to_workers,
    parse_settings,
)
from interlock.config.schema import revealed_headers
from interlock.config.secrets import estimate_bits, hash_secret, mask_url_password, master_key_problem

MASTER = "sk-master-Tq8vK3nZ7xLw2RcB5mYp9HdF"
SECRETS = {
    "MASTER": MASTER,
    "PROVIDER_KEY": "sk-proj-provider-0u812secretvalue",
    "UPSTREAM_AUTH": "Bearer upstream-header-token-77",
    "PROXY_PASSWORD": "pr0xy-p4ss",
    "WEBHOOK_TOKEN": "T000/B000/hooktoken999",
    "HOOK_HEADER": "hook-header-secret-42",
    "OTLP_TOKEN": "otlp-token-31337",
    "METRICS_TOKEN": "metrics-token-2718",
    "DB_PASSWORD": "db-pa55word",
}
CONFIG = """
master_key: ${MASTER}
store: postgresql://interlock:${DB_PASSWORD}@db.internal:5432/interlock
providers:
  up:
    kind: openai
    base_url: http://127.0.0.1:9/v1
    api_key: ${PROVIDER_KEY}
    headers: {Authorization: "${UPSTREAM_AUTH}", X-Title: interlock}
    proxy: http://user:${PROXY_PASSWORD}@proxy.internal:3128
telemetry:
  otlp_endpoint: http://collector:4318
  otlp_headers: {x-honeycomb-team: ${OTLP_TOKEN}}
  metrics_token: ${METRICS_TOKEN}
  alerts:
    webhooks:
      - url: https://hooks.slack.com/services/${WEBHOOK_TOKEN}
        headers: {X-Token: ${HOOK_HEADER}}
models:
  chat: {deployments: [{provider: up, model: m}]}
"""


def test_no_secret_appears_in_repr_or_str_of_the_settings() -> None:
    settings = parse_settings(CONFIG, env=SECRETS)
    shown = repr(settings) + str(settings) + repr(settings.providers) + repr(settings.telemetry)
    for name, secret in SECRETS.items():
        assert secret not in shown, f"{name} is shown"
    assert "postgresql://interlock:***@db.internal:5432/interlock" in repr(settings)
    provider = settings.providers["up"]
    assert revealed_headers(provider.headers) == {
        "Authorization": SECRETS["UPSTREAM_AUTH"],
        "X-Title": "interlock",
    }
    assert provider.proxy is not None and SECRETS["PROXY_PASSWORD"] in provider.proxy.get_secret_value()
    assert settings.store.endswith("@db.internal:5432/interlock")  # the real URL is still there to use


def test_validation_errors_do_not_quote_secret_values() -> None:
    bad = CONFIG.replace("http://user:", "socks5://user:")
    with pytest.raises(ConfigError) as info:
        parse_settings(bad, env=SECRETS)
    assert "providers.up.proxy" in str(info.value)
    for secret in SECRETS.values():
        assert secret not in str(info.value)


def test_a_yaml_error_does_not_quote_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings('master_key: "sk-unclosed-Tq8vK3nZ7xLw2RcB5mYp9HdF\n', env={})
    assert "not valid YAML" in str(info.value) and "line" in str(info.value)
    assert "Tq8vK3nZ7xLw2RcB5mYp9HdF" not in str(info.value)


WEAK = [
    "short-key-1234",
    "a" * 40,
    "password1234password1234password",
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "sk-il-master-aaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "Tr0ub4dor&3Tr0ub4dor&3Tr0ub4dor&3x",
    "has a space in it Tq8vK3nZ7xLw2RcB5mYp9HdF",
]
STRONG = [
    MASTER,
    "3f6c1a9be07d45c28a11f0e2d9b7c634",  # 32 hex characters: 128 random bits
    "sk-il-master-Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eA",
    "correct-horse-battery-staple-violin-quasar",
]


@pytest.mark.parametrize("key", WEAK)
def test_weak_master_keys_are_refused_with_a_clear_message(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings("models: {}\n", env={MASTER_KEY_ENV: key})
    message = str(info.value)
    assert "master_key" in message and key not in message
    assert master_key_problem(key) is not None


@pytest.mark.parametrize("key", STRONG)
def test_strong_master_keys_are_accepted(key: str) -> None:
    assert master_key_problem(key) is None, estimate_bits(key)
    settings = parse_settings("models: {}\n", env={MASTER_KEY_ENV: key})
    assert settings.master_key_hash() == hash_secret(key)


def test_the_master_key_can_be_given_as_its_hash_only() -> None:
    digest = hash_secret(MASTER)
    from_env = parse_settings("models: {}\n", env={MASTER_KEY_SHA256_ENV: digest.upper()})
    assert from_env.master_key is None and from_env.master_key_hash() == digest
    from_file = parse_settings(f"master_key_sha256: {digest}\n", env={})
    assert from_file.master_key_hash() == digest
    assert digest not in repr(from_file)
    # a key in the environment wins over a hash there (it is the operator's own setting)
    both = parse_settings("models: {}\n", env={MASTER_KEY_ENV: MASTER, MASTER_KEY_SHA256_ENV: "0" * 64})
    assert both.master_key_hash() == digest


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("master_key_sha256: not-a-digest\n", "SHA-256 hex digest"),
        (f"master_key: {MASTER}\nmaster_key_sha256: {hash_secret(MASTER)}\n", "not both"),
    ],
)
def test_bad_master_key_hashes_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_settings(text, env={})


def test_workers_get_the_hash_and_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER)
    monkeypatch.delenv(MASTER_KEY_SHA256_ENV, raising=False)
    export_to_workers(master_key_sha256=hash_secret(MASTER))
    assert MASTER_KEY_ENV not in os.environ
    assert os.environ[MASTER_KEY_SHA256_ENV] == hash_secret(MASTER)
    assert parse_settings("models: {}\n").master_key_hash() == hash_secret(MASTER)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("redis://:pw@h", "redis://:***@h"),
        ("sqlite:///.interlock/interlock.db", "sqlite:///.interlock/interlock.db"),
        ("http://u@h/", "http://u@h/"),
        ("not a url", "not a url"),
    ],
)
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url_password(url) == shown
