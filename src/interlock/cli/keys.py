"""``interlock keys create|list|show|update|revoke``: manage API keys through a running gateway's
admin API (``/admin/keys``), with the same fields and rules.

``interlock keys rotate-master`` replaces the embedded default's generated master key (the one
``interlock up`` makes when no key is configured); it works on the ``.interlock`` directory, not
through a gateway.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from interlock.cli.admin_client import Gateway, MasterKey, admin_call, console, query
from interlock.config.demo import DEMO_DIR, HASH_FILE, rotate_master_key

__all__ = ["expiry", "names", "register"]

keys_app = typer.Typer(help="Create, list, change and revoke API keys.", no_args_is_help=True)

_DURATION = re.compile(r"^(\d+)\s*(m|h|d)$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86_400}

RoleOption = Annotated[
    str | None,
    typer.Option("--role", help="admin, operator, team_admin, developer or viewer.", show_default=False),
]
Models = Annotated[
    list[str] | None,
    typer.Option(
        "--models", help="Models the key may use: names or globs (gpt-4*); repeat or comma-separate."
    ),
]
Pools = Annotated[
    list[str] | None,
    typer.Option("--pools", help="Pools the key may be routed to; repeat or comma-separate."),
]
Expires = Annotated[
    str | None,
    typer.Option("--expires", help="When the key stops working: a duration (30d, 12h) or an ISO time."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def expiry(text: str) -> str:
    """``30d``, ``12h``, ``90m`` from now, or an ISO timestamp (UTC when it has no zone), as ISO."""
    match = _DURATION.match(text.strip())
    if match:
        when = datetime.now(UTC) + timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2)])
        return when.isoformat()
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"expected a duration such as 30d or an ISO time, got {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def names(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated option values as one list (``None`` when none was given)."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _owner(key: dict[str, Any]) -> str:
    parts = [
        f"user {key['user_id']}" if key.get("user_id") else "",
        f"team {key['team_id']}" if key.get("team_id") else "",
    ]
    return ", ".join(p for p in parts if p)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    role: RoleOption = None,
    team: Annotated[str | None, typer.Option("--team", help="The team that owns it (a service key).")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="The user that owns it (a personal key).")
    ] = None,
    expires: Expires = None,
    models: Models = None,
    pools: Pools = None,
) -> None:
    """Create a key and print it. It is shown this once and never again."""
    body: dict[str, Any] = {"name": name}
    for field, value in (
        ("role", role),
        ("team_id", team),
        ("user_id", user),
        ("models", names(models)),
        ("pools", names(pools)),
    ):
        if value is not None:
            body[field] = value
    if expires is not None:
        body["expires_at"] = expiry(expires)
    created = admin_call(gateway, master_key, "POST", "/keys", body)
    console.print(f"id:  {created['id']}\nkey: [bold]{created['key']}[/bold]", highlight=False)
    console.print("Store the key now: it cannot be shown again.", style="yellow")


@keys_app.command("list")
def list_keys(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List the keys your key may see (never their secrets)."""
    listing = admin_call(gateway, master_key, "GET", "/keys" + query(include_revoked=all_keys or None))
    table = Table("id", "name", "prefix", "created", "revoked", "role", "owner", "expires", "models", "pools")
    for key in listing["data"]:
        table.add_row(
            key["id"],
            key["name"],
            key["key_prefix"] + "…",
            str(key["created_at"])[:19],
            str(key["revoked_at"] or "")[:19],
            key.get("role") or "",
            _owner(key),
            str(key.get("expires_at") or "")[:19],
            ",".join(key.get("models") or []),
            ",".join(key.get("pools") or []),
        )
    console.print(table)


@keys_app.command("show")
def show(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
) -> None:
    """Show one key (never its secret)."""
    key = admin_call(gateway, master_key, "GET", f"/keys/{key_id}")
    for field in (
        "id",
        "name",
        "role",
        "user_id",
        "team_id",
        "org_id",
        "expires_at",
        "revoked_at",
        "models",
        "pools",
    ):
        value = key.get(field)
        shown = ",".join(value) if isinstance(value, list) else ("" if value is None else str(value))
        console.print(f"{field + ':':12} {shown}", highlight=False)


@keys_app.command("update")
def update(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    role: RoleOption = None,
    expires: Expires = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Make the key never expire.")] = False,
    models: Models = None,
    pools: Pools = None,
) -> None:
    """Change a key's name, role, expiry or allow-lists (give an empty --models '' to lift a limit)."""
    body: dict[str, Any] = {}
    for field, value in (("name", name), ("role", role), ("models", names(models)), ("pools", names(pools))):
        if value is not None:
            body[field] = value
    if expires is not None and no_expiry:
        raise typer.BadParameter("give --expires or --no-expiry, not both")
    if expires is not None:
        body["expires_at"] = expiry(expires)
    elif no_expiry:
        body["expires_at"] = None
    if not body:
        raise typer.BadParameter("nothing to change: give --name, --role, --expires, --models or --pools")
    admin_call(gateway, master_key, "PATCH", f"/keys/{key_id}", body)
    console.print(f"updated {key_id}", highlight=False)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…).")],
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
) -> None:
    """Revoke a key. It fails at once."""
    admin_call(gateway, master_key, "DELETE", f"/keys/{key_id}")
    console.print(f"revoked {key_id}")


@keys_app.command("rotate-master")
def rotate_master(
    directory: Annotated[
        Path, typer.Option("--dir", help="The embedded default's state directory.")
    ] = DEMO_DIR,
) -> None:
    """Make a new master key for `interlock up` without a config; print it once. Restart to apply."""
    key = rotate_master_key(directory)
    console.print(f"master key: [bold]{key}[/bold]", highlight=False)
    console.print(
        f"Store it now: only its SHA-256 is kept ({directory / HASH_FILE}). Restart `interlock up` "
        "to use it; the old key works until then. A key set in INTERLOCK_MASTER_KEY or a config "
        "file is rotated there instead.",
        style="yellow",
        highlight=False,
    )
