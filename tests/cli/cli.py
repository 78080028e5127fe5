"""Run ``interlock`` commands in-process against a running gateway, and read the tables they print."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from interlock.cli.main import app
from tests.gateway_harness import MASTER_KEY

__all__ = ["interlock", "table_rows"]

_RUNNER = CliRunner()


def interlock(*args: str, gateway: str, master_key: str = MASTER_KEY) -> Result:
    """``interlock ARGS --gateway GATEWAY --master-key KEY`` at a terminal wide enough that no table
    cell is cut short."""
    options = ["--gateway", gateway, "--master-key", master_key]
    return _RUNNER.invoke(app, [*args, *options], env={"COLUMNS": "250"})


def table_rows(output: str) -> list[list[str]]:
    """The body rows of the tables in ``output`` (header and borders left out), cells stripped."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]
