"""``interlock audit list|verify``: read the audit log and check its hash chain, through a running
gateway's admin API. ``verify`` exits 1 when the chain is broken, naming the first bad entry."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from interlock.cli.admin_client import Gateway, MasterKey, admin_call, console, query

__all__ = ["register"]

audit_app = typer.Typer(help="Read the audit log and verify its hash chain.", no_args_is_help=True)

GATEWAY = "http://127.0.0.1:4000"


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _change(before: object, after: object) -> str:
    """What an entry changed: the fields that differ (``name: a → b``), or what was made or removed."""
    if isinstance(before, dict) and isinstance(after, dict):
        changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        text = "; ".join(f"{k}: {_short(before.get(k))} → {_short(after.get(k))}" for k in changed)
    elif after is not None:
        text = "created " + _short(after)
    elif before is not None:
        text = "removed " + _short(before)
    else:
        text = ""
    return text if len(text) <= 120 else text[:119] + "…"


def _short(value: object) -> str:
    if isinstance(value, dict) and "id" in value:
        return str(value.get("name") or value["id"])
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


@audit_app.command("list")
def audit_list(
    gateway: Gateway = GATEWAY,
    master_key: MasterKey = "",
    action: Annotated[str | None, typer.Option("--action", help="Only this action (key.create, …).")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Only this target id.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="A duration (7d) or an ISO time.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries (1-1000).")] = 50,
) -> None:
    """The newest audit entries: who changed what, and how."""
    listing = admin_call(
        gateway, master_key, "GET", "/audit" + query(action=action, target=target, since=since, limit=limit)
    )
    table = Table("seq", "at", "actor", "action", "target", "change")
    for entry in listing["data"]:
        actor = entry["actor"] or entry["actor_key_id"] or ""
        if entry["actor"] and entry["actor_key_id"]:
            actor = f"{entry['actor']} ({entry['actor_key_id']})"
        table.add_row(
            str(entry["seq"]),
            str(entry["at"])[:19],
            actor,
            entry["action"],
            entry["target"],
            _change(entry["before"], entry["after"]),
        )
    console.print(table)


@audit_app.command("verify")
def audit_verify(gateway: Gateway = GATEWAY, master_key: MasterKey = "") -> None:
    """Walk the hash chain; exit 1 at the first edited, deleted or reordered entry."""
    report = admin_call(gateway, master_key, "GET", "/audit/verify")
    if report["ok"]:
        head = f"{report['head_seq']} {report['head_hash']}"
        console.print(f"ok: {report['entries']} entries, chain intact\nhead: {head}", highlight=False)
        return
    console.print(f"[red]BROKEN:[/red] {report['problem']}", highlight=False)
    console.print(
        f"{report['entries']} entries verified before it (up to entry {report['head_seq']})", highlight=False
    )
    raise typer.Exit(1)
