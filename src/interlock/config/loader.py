"""Loading settings: YAML, ``${ENV}`` substitution, validation with messages that name the key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from interlock.config.governance import BudgetRuleSpec, BudgetsSpec, LimitRuleSpec, LimitsSpec, RedisSpec
from interlock.config.schema import (
    DeploymentSpec,
    LoggingSpec,
    ModelSpec,
    PoolSpec,
    Price,
    ProviderSpec,
    ServerSpec,
    Settings,
)
from interlock.config.yaml_paths import YamlPath, line_numbers, where

__all__ = [
    "CONFIG_ENV",
    "MASTER_KEY_ENV",
    "MASTER_KEY_SHA256_ENV",
    "ConfigError",
    "config_path_from_env",
    "export_to_workers",
    "load_settings",
    "parse_settings",
]

CONFIG_ENV = "INTERLOCK_CONFIG"
MASTER_KEY_ENV = "INTERLOCK_MASTER_KEY"
MASTER_KEY_SHA256_ENV = "INTERLOCK_MASTER_KEY_SHA256"
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem and where it is."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid configuration in {source}:\n" + "\n".join(f"  - {p}" for p in problems))


def config_path_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file named by ``INTERLOCK_CONFIG``, if any."""
    value = (os.environ if env is None else env).get(CONFIG_ENV)
    return Path(value) if value else None


def export_to_workers(*, config_path: Path | None = None, master_key_sha256: str | None = None) -> None:
    """Put settings where worker processes (and this one's later loads) will find them.

    The master key travels as its hash only: with ``master_key_sha256`` the plaintext
    ``INTERLOCK_MASTER_KEY`` is taken out of this process's environment, so workers never see it.
    """
    if config_path is not None:
        os.environ[CONFIG_ENV] = str(config_path)
    if master_key_sha256 is not None:
        os.environ[MASTER_KEY_SHA256_ENV] = master_key_sha256
        os.environ.pop(MASTER_KEY_ENV, None)


def load_settings(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, substitute and validate a YAML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror or exc}"]) from exc
    return parse_settings(text, source=str(path), env=env)


def parse_settings(text: str, *, source: str = "<config>", env: Mapping[str, str] | None = None) -> Settings:
    """Validate YAML text into :class:`Settings`, raising :class:`ConfigError` with precise messages."""
    environ = os.environ if env is None else env
    # ${VAR} is replaced by an inert token before parsing, then by its value after: the config's
    # own YAML stays valid ("{api_key: ${KEY}}"), and a value can never inject YAML.
    tokens: dict[str, tuple[str, str | None]] = {}

    def tokenize(match: re.Match[str]) -> str:
        token = f"__interlock_env_{len(tokens)}__"
        tokens[token] = ("$", "$") if match.group(0) == "$$" else (match.group(1), match.group(2))
        return token

    tokenized = _VAR.sub(tokenize, text)
    try:
        node = yaml.compose(tokenized, Loader=yaml.SafeLoader)
        data = yaml.safe_load(tokenized)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {_yaml_problem(exc)}"]) from None
    lines = line_numbers(node) if node is not None else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys to values"])
    problems: list[str] = []
    data = _substitute(data, (), _Env(environ, tokens), problems, lines)
    if problems:
        raise ConfigError(source, problems)
    _master_key_from_env(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(err, lines) for err in exc.errors()]) from None


def _master_key_from_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """A file without a master key takes ``INTERLOCK_MASTER_KEY``, else ``…_SHA256``, if set."""
    if data.get("master_key") is not None or data.get("master_key_sha256") is not None:
        return
    if environ.get(MASTER_KEY_ENV):
        data["master_key"] = environ[MASTER_KEY_ENV]
    elif environ.get(MASTER_KEY_SHA256_ENV):
        data["master_key_sha256"] = environ[MASTER_KEY_SHA256_ENV]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without the snippet of the file PyYAML quotes (it may hold a secret)."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "the file cannot be parsed"
    where = ""
    if exc.problem_mark is not None:
        where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})"
    return f"{exc.problem or exc.context or 'syntax error'}{where}"


class _Env:
    __slots__ = ("environ", "pattern", "tokens")

    def __init__(self, environ: Mapping[str, str], tokens: dict[str, tuple[str, str | None]]) -> None:
        self.environ = environ
        self.tokens = tokens
        self.pattern = re.compile("|".join(map(re.escape, tokens))) if tokens else None


def _substitute(
    value: Any, path: YamlPath, env: _Env, problems: list[str], lines: dict[YamlPath, int]
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*path, str(k)), env, problems, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*path, i), env, problems, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or env.pattern is None:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = env.tokens[match.group(0)]
        if name == "$":
            return "$"
        if name in env.environ:
            return env.environ[name]
        if default is not None:
            return default
        problems.append(f"{where(path, lines)}: environment variable {name} is not set")
        return ""

    return env.pattern.sub(replace, value)


def _describe(err: Any, lines: dict[YamlPath, int]) -> str:
    loc: YamlPath = tuple(err["loc"])
    message = str(err["msg"])
    if err["type"] == "extra_forbidden":
        message = "unknown key"
        if loc and isinstance(loc[-1], str):
            message = f"unknown key '{loc[-1]}'" + _placement_hint(loc)
    elif err["type"] == "missing":
        message = "required key is missing"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if not loc:
        return message
    return f"{where(loc, lines)}: {message}"


def _placement_hint(loc: YamlPath) -> str:
    key = str(loc[-1])
    places = [p for p in _KEY_PLACES.get(key, ()) if p != _template(loc[:-1])]
    return f" (it belongs under {' or '.join(places)})" if places else ""


def _template(path: YamlPath) -> str:
    """``models.chat.deployments[0]`` → ``models.<name>.deployments[]``, to compare placements."""
    parts: list[str] = []
    for i, part in enumerate(path):
        if isinstance(part, int):
            parts[-1] += "[]"
        elif i > 0 and path[i - 1] in _NAMED_SECTIONS:
            parts.append("<name>")
        else:
            parts.append(part)
    return ".".join(parts) or "the top level"


_NAMED_SECTIONS = {"providers", "pools", "models"}


def _collect_places() -> dict[str, list[str]]:
    places: dict[str, list[str]] = {}
    sections: list[tuple[str, type[BaseModel]]] = [
        ("the top level", Settings),
        ("server", ServerSpec),
        ("logging", LoggingSpec),
        ("providers.<name>", ProviderSpec),
        ("pools.<name>", PoolSpec),
        ("models.<name>", ModelSpec),
        ("models.<name>.deployments[]", DeploymentSpec),
        ("models.<name>.deployments[].price", Price),
        ("redis", RedisSpec),
        ("budgets", BudgetsSpec),
        ("budgets.rules[]", BudgetRuleSpec),
        ("limits", LimitsSpec),
        ("limits.rules[]", LimitRuleSpec),
    ]
    for section, model in sections:
        for name in model.model_fields:
            places.setdefault(name, []).append(section)
    return places


_KEY_PLACES = _collect_places()
