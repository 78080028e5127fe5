"""Config loading: the issue's example file works; every mistake names the key and where it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.config.loader import ConfigError, load_settings, parse_settings

EXAMPLE = """\
master_key: ${INTERLOCK_MASTER_KEY}
store: sqlite:///.interlock/interlock.db
providers:
  sim-a: {kind: openai, base_url: http://127.0.0.1:9101/v1}
  sim-b: {kind: openai, base_url: http://127.0.0.1:9102/v1, api_key: ${SIM_KEY}}
pools:
  gpu: {labels: {hardware: gpu}}
models:
  chat:
    deployments:
      - {provider: sim-a, model: sim-small, pool: gpu, price: {input: 0.10, output: 0.40}}
      - {provider: sim-b, model: sim-small, price: {input: 0.10, output: 0.40}, weight: 2}
"""
ENV = {"INTERLOCK_MASTER_KEY": "sk-master-4fT9qLm2Xv7RcB1nWk8ZpD3s", "SIM_KEY": "secret: {not yaml"}


def test_the_example_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "interlock.yaml"
    path.write_text(EXAMPLE)
    settings = load_settings(path, env=ENV)
    assert settings.master_key is not None
    assert settings.master_key.get_secret_value() == ENV["INTERLOCK_MASTER_KEY"]
    sim_b = settings.providers["sim-b"]
    assert sim_b.api_key is not None and sim_b.api_key.get_secret_value() == "secret: {not yaml"
    deployments = settings.models["chat"].deployments
    assert [d.weight for d in deployments] == [1.0, 2.0]
    assert deployments[0].pool == "gpu" and deployments[0].price.output == 0.40


def test_secrets_never_show_in_repr() -> None:
    settings = parse_settings(EXAMPLE, env=ENV)
    assert "sk-master-0123" not in repr(settings) and "not yaml" not in repr(settings)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, env=ENV if env is None else env)
    return caught.value.problems


def test_missing_environment_variables_are_named() -> None:
    found = problems(EXAMPLE, env={})
    assert found == [
        "master_key (line 1): environment variable INTERLOCK_MASTER_KEY is not set",
        "providers.sim-b.api_key (line 5): environment variable SIM_KEY is not set",
    ]


def test_default_values_and_escapes() -> None:
    fallback = "sk-fallback-Hx4kQ9vL2mRt7WbN8cZp"
    text = f"master_key: ${{NOPE:-{fallback}}}\nstore: sqlite:///$${{literal}}.db\n"
    settings = parse_settings(text, env={})
    assert settings.master_key is not None and settings.master_key.get_secret_value() == fallback
    assert settings.store == "sqlite:///${literal}.db"


def test_unknown_key_names_the_path_and_line() -> None:
    text = EXAMPLE.replace("price: {input: 0.10, output: 0.40}, weight", "pric: {input: 0.10}, weight")
    assert problems(text) == ["models.chat.deployments[1].pric (line 12): unknown key 'pric'"]


def test_misplaced_key_says_where_it_belongs() -> None:
    assert problems(EXAMPLE + "port: 4000\n") == [
        "port (line 13): unknown key 'port' (it belongs under server)"
    ]
    found = problems(EXAMPLE.replace("weight: 2}", "weight: 2, input: 0.2}"))
    assert found == [
        "models.chat.deployments[1].input (line 12): unknown key 'input' "
        "(it belongs under models.<name>.deployments[].price)"
    ]


def test_unknown_provider_and_pool_references() -> None:
    assert problems(EXAMPLE.replace("provider: sim-a", "provider: sim-z")) == [
        "models.chat.deployments[0].provider: unknown provider 'sim-z' (known: sim-a, sim-b)"
    ]
    assert problems(EXAMPLE.replace("pool: gpu", "pool: tpu")) == [
        "models.chat.deployments[0].pool: unknown pool 'tpu' (known: gpu)"
    ]


def test_wrong_types_and_values() -> None:
    found = problems(EXAMPLE.replace("weight: 2", "weight: heavy"))
    assert len(found) == 1 and found[0].startswith("models.chat.deployments[1].weight (line 12):")
    assert problems(EXAMPLE.replace("kind: openai, base_url: http://127.0.0.1:9101/v1", "kind: grpc"))[
        0
    ].startswith("providers.sim-a.kind (line 4):")
    assert "must start with http" in problems(EXAMPLE.replace("http://127.0.0.1:9101", "127.0.0.1:9101"))[0]
    assert problems(EXAMPLE.replace("http://127.0.0.1:9101", "http://:9101")) == [
        "providers.sim-a.base_url (line 4): has no host"
    ]
    assert problems(EXAMPLE.replace("127.0.0.1:9101", "127.0.0.1:91010")) == [
        "providers.sim-a.base_url (line 4): has an invalid port"
    ]
    assert problems(
        EXAMPLE.replace("base_url: http://127.0.0.1:9101/v1", "base_url: http://h/v1, proxy: socks5://p:1080")
    ) == [
        "providers.sim-a.proxy (line 4): must be an http:// URL with a host (http://[user:password@]host:port)"
    ]
    bad_header = EXAMPLE.replace(
        "base_url: http://127.0.0.1:9101/v1", 'base_url: http://h/v1, headers: {"X-A": "a\\r\\nX-B: b"}'
    )
    assert problems(bad_header) == [
        "providers.sim-a.headers (line 4): the value of 'X-A' contains a line break or NUL"
    ]
    assert problems(
        EXAMPLE.replace(
            "    deployments:\n      - {provider: sim-a", "    deployment:\n      - {provider: sim-a"
        )
    )


def test_not_yaml_and_not_a_mapping() -> None:
    assert problems("models: [unclosed")[0].startswith("not valid YAML")
    assert problems("- just\n- a list\n") == ["the top level must be a mapping of keys to values"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(tmp_path / "missing.yaml", env={})


def test_master_key_from_the_environment_when_the_file_has_none() -> None:
    key = "sk-from-env-Vb3nM8qX1wLz6TfR9kHc"
    settings = parse_settings("models: {}\n", env={"INTERLOCK_MASTER_KEY": key})
    assert settings.master_key is not None and settings.master_key.get_secret_value() == key
