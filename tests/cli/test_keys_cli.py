"""``interlock keys create|list|revoke`` against a real gateway over loopback HTTP: a created key
works for requests until it is revoked, and the listing never shows a secret."""

from __future__ import annotations

import re

import openai
import pytest

from interlock.server.thread import free_port
from tests.cli.cli import interlock, table_rows
from tests.gateway_harness import Gateway

MESSAGES = [{"role": "user", "content": "hello"}]


def create(gateway: Gateway, name: str, *options: str) -> tuple[str, str]:
    """``interlock keys create NAME``: (id, plaintext key) as printed."""
    result = interlock("keys", "create", name, *options, gateway=gateway.url)
    assert result.exit_code == 0, result.output
    match = re.fullmatch(
        r"id:  (key_\S+)\nkey: (sk-il-\S+)\nStore the key now: it cannot be shown again.\n", result.output
    )
    assert match, result.output
    return match.group(1), match.group(2)


def listed(gateway: Gateway, *options: str) -> dict[str, list[str]]:
    """``interlock keys list``: each row's cells by key id."""
    result = interlock("keys", "list", *options, gateway=gateway.url)
    assert result.exit_code == 0, result.output
    return {row[0]: row for row in table_rows(result.output)}


def test_a_created_key_works_until_it_is_revoked(gateway: Gateway) -> None:
    key_id, key = create(gateway, "billing-service")
    client = gateway.openai(key)
    assert client.chat.completions.create(model="chat", messages=MESSAGES).choices  # type: ignore[arg-type]

    revoked = interlock("keys", "revoke", key_id, gateway=gateway.url)
    assert revoked.exit_code == 0, revoked.output
    assert revoked.output == f"revoked {key_id}\n"
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]


def test_the_listing_shows_names_prefixes_and_roles_but_never_a_secret(gateway: Gateway) -> None:
    first_id, first_key = create(gateway, "search-api", "--role", "viewer", "--models", "chat,gpt-4*")
    second_id, second_key = create(gateway, "nightly-batch")
    result = interlock("keys", "list", gateway=gateway.url)
    assert first_key not in result.output and second_key not in result.output
    rows = listed(gateway)
    assert set(rows) == {first_id, second_id}
    _, name, prefix, created, revoked_at, role, owner, expires, models, pools = rows[first_id]
    assert (name, revoked_at, role, owner, expires, models, pools) == (
        "search-api",
        "",
        "viewer",
        "",
        "",
        "chat,gpt-4*",
        "",
    )
    assert prefix.endswith("…") and first_key.startswith(prefix[:-1]) and len(prefix) < len(first_key)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d", created), created
    assert rows[second_id][1] == "nightly-batch" and rows[second_id][5] == "developer"


def test_revoked_keys_are_listed_only_with_all(gateway: Gateway) -> None:
    kept_id, _ = create(gateway, "kept")
    gone_id, _ = create(gateway, "gone")
    assert interlock("keys", "revoke", gone_id, gateway=gateway.url).exit_code == 0
    assert set(listed(gateway)) == {kept_id}
    everything = listed(gateway, "--all")
    assert set(everything) == {kept_id, gone_id}
    assert everything[kept_id][4] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d", everything[gone_id][4])


def test_revoking_twice_or_an_unknown_key_fails_cleanly(gateway: Gateway) -> None:
    key_id, _ = create(gateway, "once")
    assert interlock("keys", "revoke", key_id, gateway=gateway.url).exit_code == 0
    again = interlock("keys", "revoke", key_id, gateway=gateway.url)
    assert again.exit_code == 1
    assert again.output == f"error 404: No active key with id '{key_id}'.\n"
    unknown = interlock("keys", "revoke", "key_nope", gateway=gateway.url)
    assert unknown.exit_code == 1 and "No active key with id 'key_nope'" in unknown.output


def test_a_wrong_master_key_or_no_gateway_fails_cleanly(gateway: Gateway) -> None:
    wrong = interlock("keys", "create", "x", gateway=gateway.url, master_key="sk-wrong-master-000")
    assert wrong.exit_code == 1 and wrong.output.startswith("error 401:")
    assert listed(gateway) == {}  # nothing was created
    nobody = f"http://127.0.0.1:{free_port()}"
    down = interlock("keys", "list", gateway=nobody)
    assert down.exit_code == 1 and f"cannot reach {nobody}" in down.output
