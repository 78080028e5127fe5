"""``interlock status``: every deployment's health, from a running gateway's admin API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from interlock.cli.admin_client import Gateway, MasterKey, admin_call

__all__ = ["register"]

console = Console()
_STYLES = {"closed": "green", "half_open": "yellow", "open": "red", "disabled": "dim"}


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    model: Annotated[str | None, typer.Option(help="Only this model's deployments.")] = None,
) -> None:
    """Show each deployment: breaker state, error rate, latency, in-flight and concurrency limit."""
    listing = admin_call(gateway, master_key, "GET", "/deployments")
    table = Table(
        "deployment", "pool", "state", "errors", "ttft ewma", "in flight", "limit", "queued", "requests"
    )
    for d in listing["data"]:
        if model and d["model"] != model:
            continue
        style = _STYLES.get(d["state"], "")
        ttft = f"{d['ewma_ttft_ms']:.1f} ms" if d["ewma_ttft_ms"] is not None else "-"
        table.add_row(
            d["id"],
            d["pool"] or "-",
            f"[{style}]{d['state']}[/{style}]" if style else d["state"],
            f"{d['error_rate'] * 100:.1f} %",
            ttft,
            str(d["in_flight"]),
            str(d["concurrency_limit"]),
            str(d["queued"]),
            str(d["requests"]),
        )
    console.print(table)
