"""``interlock chaos SCENARIO``: run a chaos drill against a gateway (or a fleet it starts itself)."""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from interlock.chaos import (
    DrillError,
    DrillReport,
    DrillTarget,
    FleetError,
    Scenario,
    ScenarioError,
    load_scenario,
    render,
    run_drill_sync,
    run_fleet_drill,
    shipped_scenarios,
)
from interlock.config.loader import MASTER_KEY_ENV

__all__ = ["chaos", "register"]

_err = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``chaos`` command to the main ``interlock`` app."""
    app.command("chaos")(chaos)


def chaos(
    scenario: Annotated[
        str | None,
        typer.Argument(
            help="A scenario file, or the name of a shipped scenario (see --list).", show_default=False
        ),
    ] = None,
    gateway: Annotated[
        str | None, typer.Option("--gateway", envvar="INTERLOCK_URL", help="The gateway's base URL.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="API key for the traffic (default: the master key).")
    ] = None,
    master_key: Annotated[
        str | None,
        typer.Option(
            "--master-key",
            envvar=MASTER_KEY_ENV,
            help="Master key: breaker states from /admin/deployments, disable/enable actions.",
            show_default=False,
        ),
    ] = None,
    fleet: Annotated[
        bool, typer.Option("--fleet", help="Start the scenario's own simulators and gateway.")
    ] = False,
    sim: Annotated[
        list[str] | None,
        typer.Option(
            "--sim", help="NAME=URL of a simulator the scenario names (repeatable).", show_default=False
        ),
    ] = None,
    rps: Annotated[float | None, typer.Option(help="Requests per second (default: the scenario's).")] = None,
    stream: Annotated[
        bool | None,
        typer.Option("--stream/--no-stream", help="Streaming requests (default: the scenario's)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model to drive (default: the scenario's).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    list_scenarios: Annotated[bool, typer.Option("--list", help="List the shipped scenarios.")] = False,
) -> None:
    """Drive traffic while a scenario breaks backends; report errors, fallbacks, latency, detection
    and recovery."""
    if list_scenarios:
        _list()
        return
    if scenario is None:
        raise typer.BadParameter("give a scenario file or name (--list shows the shipped ones)")
    loaded = _load(scenario, rps=rps, stream=stream, model=model)
    try:
        if fleet:
            report = run_fleet_drill(loaded, log=_progress)
        else:
            if gateway is None:
                raise typer.BadParameter("give --gateway URL, or --fleet to start a fleet from the scenario")
            traffic_key = key or master_key
            if not traffic_key:
                raise typer.BadParameter("give --key (or --master-key) for the traffic")
            target = DrillTarget(gateway, traffic_key, master_key or key, _sims(sim or []))
            report = run_drill_sync(loaded, target, log=_progress)
    except (DrillError, FleetError) as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    _output(report, json_output)


def _progress(line: str) -> None:
    _err.print(f"[dim]{line}[/dim]", highlight=False)


def _load(ref: str, **overrides: object) -> Scenario:
    try:
        loaded = load_scenario(ref)
        changes = {k: v for k, v in overrides.items() if v is not None}
        return loaded.with_overrides(**changes) if changes else loaded
    except ScenarioError as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(2) from None
    except ValueError as exc:  # an override the scenario's schema refuses
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None


def _sims(pairs: list[str]) -> dict[str, str]:
    sims = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"--sim wants NAME=URL (http://…), got {pair!r}")
        sims[name] = url
    return sims


def _list() -> None:
    table = Table("scenario", "description", "rps", "stream")
    for name, path in shipped_scenarios().items():
        try:
            loaded = load_scenario(path)
        except ScenarioError as exc:
            table.add_row(name, f"[red]invalid: {exc.problems[0]}[/red]", "", "")
            continue
        table.add_row(
            name,
            loaded.description,
            f"{loaded.rps:g}",
            "mixed" if loaded.stream == "mixed" else "yes" if loaded.stream else "no",
        )
    Console().print(table)


def _output(report: DrillReport, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
        sys.stdout.flush()
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=150)
        render(report, console)
