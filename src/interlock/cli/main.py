"""The ``interlock`` command line: one typer app, each command group in its own module."""

from __future__ import annotations

import typer

from interlock.cli.audit import register as register_audit
from interlock.cli.chaos import register as register_chaos
from interlock.cli.keys import register as register_keys
from interlock.cli.logs import register as register_logs
from interlock.cli.report import register as register_report
from interlock.cli.sim import register as register_sim
from interlock.cli.status import register as register_status
from interlock.cli.tenants import register as register_tenants
from interlock.cli.top import register as register_top
from interlock.cli.up import register as register_up

__all__ = ["app", "main"]

app = typer.Typer(
    name="interlock",
    help="Interlock: one OpenAI-compatible API over every model backend.",
    no_args_is_help=True,
    add_completion=False,
)
for register in (
    register_up,
    register_status,
    register_top,
    register_logs,
    register_report,
    register_keys,
    register_tenants,
    register_audit,
    register_sim,
    register_chaos,
):
    register(app)


def main() -> None:
    """Console-script entry point."""
    app()
