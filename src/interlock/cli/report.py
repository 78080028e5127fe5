"""``interlock report weekly``: performance, SLO compliance, cost, fallbacks and top consumers, as
Markdown or as one HTML page with inline SVG charts, from a running gateway's admin API."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from interlock.cli.admin_client import Gateway, MasterKey, admin_call
from interlock.telemetry.report_render import RENDERERS

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
