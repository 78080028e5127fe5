"""``interlock report weekly``: performance, SLO compliance, cost, fallbacks and top consumers, as
Markdown or as one HTML page with inline SVG charts, from a running gateway's admin API."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from interlock.cli.admin_client import Gateway, MasterKey, admin_call
from interlock.telemetry.report_render import RENDERERS
from interlock.telemetry.spend_report import render_csv

__all__ = ["register"]

report_app = typer.Typer(help="Operations reports from the request log.", no_args_is_help=True)
console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")


@report_app.command("weekly")
def weekly(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    output_format: Annotated[
        Literal["markdown", "html"], typer.Option("--format", help="markdown or html (with charts).")
    ] = "markdown",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file, not stdout.")] = None,
    since: Annotated[str, typer.Option(help="Start: a duration (7d, 24h) or an ISO timestamp.")] = "7d",
    bucket: Annotated[str, typer.Option(help="Chart step: 1d, 6h, 1h …")] = "1d",
) -> None:
    """The last week (from midnight UTC seven days ago) in daily steps."""
    query = urllib.parse.urlencode({"since": since, "bucket": bucket})
    data = admin_call(gateway, master_key, "GET", f"/reports/summary?{query}")
    text = RENDERERS[output_format](data)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out} ({output_format}, {len(text):,} bytes)", highlight=False)


@report_app.command("spend")
def spend(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    by: Annotated[
        Literal["team", "key", "user", "model", "pool"], typer.Option("--by", help="How to group spend.")
    ] = "team",
    since: Annotated[str, typer.Option(help="Start: a duration (7d, 24h) or an ISO timestamp.")] = "7d",
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    output_format: Annotated[
        Literal["table", "csv", "json"], typer.Option("--format", help="table, csv or json.")
    ] = "table",
) -> None:
    """Spend by team, key, user, model or pool: showback and chargeback."""
    query = {"by": by, "since": since, **({"until": until} if until else {})}
    data = admin_call(gateway, master_key, "GET", f"/reports/spend?{urllib.parse.urlencode(query)}")
    if output_format == "json":
        typer.echo(json.dumps(data, indent=2))
        return
    if output_format == "csv":
        typer.echo(render_csv(data), nl=False)
        return
    table = Table(by, "requests", "errors", "prompt tokens", "completion tokens", "cost $", title=None)
    for row in [*data["rows"], data["total"]]:
        table.add_row(
            str(row["name"]),
            f"{row['requests']:,}",
            f"{row['errors']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"{row['cost_usd']:,.4f}",
            end_section=row is data["rows"][-1] if data["rows"] else False,
        )
    Console().print(table)
    console.print(f"since {data['since'][:19]}  until {(data['until'] or 'now')[:19]}", highlight=False)
