"""``interlock keys create|list|revoke``: manage API keys through a running gateway's admin API.

``interlock keys rotate-master`` replaces the embedded default's generated master key (the one
``interlock up`` makes when no key is configured); it works on the ``.interlock`` directory, not
through a gateway.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from interlock.config.demo import DEMO_DIR, HASH_FILE, rotate_master_key
from interlock.config.loader import MASTER_KEY_ENV

__all__ = ["Gateway", "MasterKey", "admin_call", "register"]

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console()

Gateway = Annotated[str, typer.Option("--gateway", envvar="INTERLOCK_URL", help="Gateway base URL.")]
MasterKey = Annotated[
    str,
    typer.Option("--master-key", envvar=MASTER_KEY_ENV, help="The master key.", show_default=False),
]


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def admin_call(gateway: str, master_key: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        gateway.rstrip("/") + "/admin" + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        console.print(f"[red]error {exc.code}:[/red] {message}", highlight=False)
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        console.print(f"[red]error:[/red] cannot reach {gateway}: {exc.reason}", highlight=False)
        raise typer.Exit(1) from None


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    role: Annotated[list[str] | None, typer.Option("--role", help="A role (repeatable).")] = None,
) -> None:
    """Create a key and print it. It is shown this once and never again."""
    created = admin_call(gateway, master_key, "POST", "/keys", {"name": name, "roles": role or []})
    console.print(f"id:  {created['id']}\nkey: [bold]{created['key']}[/bold]", highlight=False)
    console.print("Store the key now: it cannot be shown again.", style="yellow")


@keys_app.command("list")
def list_keys(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys (never their secrets)."""
    suffix = "?include_revoked=true" if all_keys else ""
    listing = admin_call(gateway, master_key, "GET", "/keys" + suffix)
    table = Table("id", "name", "prefix", "created", "revoked", "roles")
    for key in listing["data"]:
        table.add_row(
            key["id"],
            key["name"],
            key["key_prefix"] + "…",
            str(key["created_at"])[:19],
            str(key["revoked_at"] or "")[:19],
            ",".join(key["roles"]),
        )
    console.print(table)


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
