"""``interlock logs``: query the request log of a running gateway."""

from __future__ import annotations

import json
import urllib.parse
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from interlock.cli.admin_client import Gateway, MasterKey, admin_call

__all__ = ["register"]

console = Console()


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    status: Annotated[str | None, typer.Option(help="ok, error, or a status code.")] = None,
    since: Annotated[str | None, typer.Option(help="A duration (15m, 1h, 7d) or an ISO timestamp.")] = None,
    key_id: Annotated[str | None, typer.Option("--key-id", help="Only this key's requests.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show recent requests: model, deployment, status, latency, TTFT, tokens, cost, attempts."""
    params = {"model": model, "status": status, "since": since, "key_id": key_id, "limit": str(limit)}
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    records = admin_call(gateway, master_key, "GET", f"/requests?{query}")["data"]
    if as_json:
        for record in records:
            typer.echo(json.dumps(record))
        return
    table = Table(
        "time", "model", "deployment", "status", "latency", "ttft", "tokens in/out", "cost $", "attempts"
    )
    for r in records:
        ttft = f"{r['ttft_ms']:.0f} ms" if r["ttft_ms"] is not None else "-"
        style = "red" if r["status"] >= 400 else ""
        table.add_row(
            r["created_at"][11:19],
            r["model"],
            r["deployment"] or "-",
            f"[{style}]{r['status']}[/{style}]" if style else str(r["status"]),
            f"{r['latency_ms']:.0f} ms",
            ttft,
            f"{r['prompt_tokens']}/{r['completion_tokens']}",
            f"{r['cost']:.6f}",
            str(len(r["attempts"])),
        )
    console.print(table)
