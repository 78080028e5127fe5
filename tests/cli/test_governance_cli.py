"""``interlock orgs|teams|users|audit`` and the scoped ``interlock keys`` options against a real
gateway over loopback HTTP: what the CLI makes works (and is refused) as the admin API says."""

from __future__ import annotations

import re
import sqlite3

import openai
import pytest

from tests.cli.cli import interlock, table_rows
from tests.gateway_harness import Gateway

MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "hello"}]


def run(gateway: Gateway, *args: str, key: str | None = None) -> str:
    result = interlock(*args, gateway=gateway.url, **({"master_key": key} if key else {}))
    assert result.exit_code == 0, result.output
    return result.output


def made_id(output: str) -> str:
    match = re.fullmatch(r"id: (\w+)\n", output)
    assert match, output
    return match.group(1)


def made_key(output: str) -> tuple[str, str]:
    match = re.match(r"id:  (key_\S+)\nkey: (sk-il-\S+)\n", output)
    assert match, output
    return match.group(1), match.group(2)


def test_the_tenant_tree_from_the_command_line(gateway: Gateway) -> None:
    org = made_id(run(gateway, "orgs", "create", "acme"))
    team = made_id(run(gateway, "teams", "create", "search", "--org", org))
    user = made_id(run(gateway, "users", "create", "ann@acme.test", "--org", org, "--name", "Ann"))
    assert run(gateway, "teams", "add-member", team, user, "--role", "team_admin") == (
        f"{user} is a team_admin of {team}\n"
    )
    assert [row[:3] for row in table_rows(run(gateway, "orgs", "list"))] == [[org, "acme", "False"]]
    assert [row[:3] for row in table_rows(run(gateway, "teams", "list", "--org", org))] == [
        [team, org, "search"]
    ]
    users = table_rows(run(gateway, "users", "list", "--team", team))
    assert [row[:4] for row in users] == [[user, org, "ann@acme.test", "Ann"]]
    assert [row[:2] for row in table_rows(run(gateway, "teams", "members", team))] == [[user, "team_admin"]]

    key_id, key = made_key(
        run(gateway, "keys", "create", "ann-laptop", "--user", user, "--team", team, "--role", "team_admin",
            "--expires", "30d", "--models", "chat,embed", "--pools", "gpu")
    )  # fmt: skip
    shown = run(gateway, "keys", "show", key_id)
    for line in (
        "role:        team_admin",
        f"team_id:     {team}",
        "models:      chat,embed",
        "pools:       gpu",
    ):
        assert line in shown, shown
    # the key acts as its role: a team admin lists its team's keys, and may not make orgs
    listing = table_rows(run(gateway, "keys", "list", key=key))
    assert [row[0] for row in listing] == [key_id]
    refused = interlock("orgs", "create", "rogue", gateway=gateway.url, master_key=key)
    assert refused.exit_code == 1 and refused.output.startswith("error 403:")

    assert run(gateway, "teams", "update", team, "--disable") == f"updated {team}\n"
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key).models.list()
    run(gateway, "teams", "update", team, "--enable")
    assert gateway.openai(key).models.list().data
    run(gateway, "teams", "remove-member", team, user)
    with pytest.raises(openai.AuthenticationError):
        gateway.openai(key).models.list()
    assert run(gateway, "users", "delete", user) == f"deleted {user}\n"
    assert run(gateway, "orgs", "delete", org) == f"deleted {org}\n"
    assert table_rows(run(gateway, "orgs", "list")) == []


def test_key_update_from_the_command_line(gateway: Gateway) -> None:
    key_id, key = made_key(run(gateway, "keys", "create", "svc", "--models", "embed"))
    client = gateway.openai(key)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    assert (
        run(gateway, "keys", "update", key_id, "--models", "chat", "--name", "svc2") == f"updated {key_id}\n"
    )
    assert client.chat.completions.create(model="chat", messages=MESSAGES).choices  # type: ignore[arg-type]
    run(gateway, "keys", "update", key_id, "--expires", "2001-01-01T00:00:00")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
    nothing = interlock("keys", "update", key_id, gateway=gateway.url)
    assert nothing.exit_code == 2 and "nothing to change" in nothing.output
    bad = interlock("keys", "create", "x", "--expires", "soon", gateway=gateway.url)
    assert bad.exit_code == 2 and "expected a duration" in bad.output


def test_bad_input_is_refused_with_the_apis_words(gateway: Gateway) -> None:
    unknown = interlock("teams", "create", "t", "--org", "org_nope", gateway=gateway.url)
    assert unknown.exit_code == 1 and unknown.output == "error 400: org_id: no org 'org_nope'.\n"
    role = interlock("keys", "create", "x", "--role", "root", gateway=gateway.url)
    assert role.exit_code == 1 and role.output.startswith("error 400: role:")
    org = made_id(run(gateway, "orgs", "create", "dup"))
    again = interlock("orgs", "create", "dup", gateway=gateway.url)
    assert again.exit_code == 1 and "error 409: name: a org with name 'dup' exists already" in again.output
    assert org


def test_audit_list_and_verify(gateway: Gateway) -> None:
    org = made_id(run(gateway, "orgs", "create", "audited"))
    run(gateway, "orgs", "update", org, "--name", "renamed")
    rows = table_rows(run(gateway, "audit", "list"))
    assert [(row[0], row[3], row[4]) for row in rows] == [("2", "org.update", org), ("1", "org.create", org)]
    assert rows[0][2] == "master (master)" and rows[0][5] == "name: audited → renamed"
    assert rows[1][5] == "created audited"
    verified = run(gateway, "audit", "verify")
    assert verified.startswith("ok: 2 entries, chain intact\nhead: 2 ")

    database = gateway.runtime.settings.store.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_log SET target = 'org_other' WHERE seq = 1")
    broken = interlock("audit", "verify", gateway=gateway.url)
    assert broken.exit_code == 1
    assert broken.output.startswith("BROKEN: entry 1 was edited: its content does not match its hash\n")
