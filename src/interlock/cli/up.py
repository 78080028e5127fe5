"""``interlock up``: run the gateway (with the demo fleet when no config file is given)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn
import yaml
from rich.console import Console

from interlock.config.demo import DEMO_DIR, MasterKey, demo_settings, ensure_master_key
from interlock.config.loader import CONFIG_ENV, ConfigError, export_to_workers, load_settings
from interlock.config.schema import Settings
from interlock.server.app import create_app, tune_gc
from interlock.server.edge import uvicorn_options
from interlock.server.proxies import proxy_options
from interlock.sim import SimConfig, SimProcess

__all__ = ["register"]

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", envvar=CONFIG_ENV, help="YAML config file.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 4000].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [default: 1].")] = None,
) -> None:
    """Start the gateway. Without --config, serve the demo fleet of simulated backends."""
    # Uvicorn shuts down gracefully on SIGTERM and then raises the signal again; with the default
    # action that would end the process on the spot and leave the demo simulators running.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with contextlib.ExitStack() as stack:
        master: MasterKey | None = None
        if config is not None:
            settings = _load(config)
            path = config
        else:
            master = _demo_master_key()
            export_to_workers(master_key_sha256=master.sha256)  # children get the hash, never the key
            path = stack.enter_context(_demo_fleet())
            settings = _load(path)
        server = settings.server
        host = host or server.host
        port = port if port is not None else server.port
        workers = workers or server.workers
        _announce(host, port, _master_key_line(settings, master), settings, demo=config is None)
        tune_gc()
        if workers > 1:
            export_to_workers(config_path=path.resolve())
            uvicorn.run(
                "interlock.server.app:create_app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                **uvicorn_options(server),
                **proxy_options(server),
            )
        else:
            options = uvicorn_options(server) | proxy_options(server)
            uvicorn.run(create_app(settings), host=host, port=port, **options)


def _demo_master_key() -> MasterKey:
    try:
        return ensure_master_key()
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


_ROTATE = "rotate with `interlock keys rotate-master`"


def _master_key_line(settings: Settings, demo: MasterKey | None) -> str | None:
    """What the banner says about the master key. A configured key is never printed."""
    if demo is not None and demo.new_key is not None:
        return f"{demo.new_key}   (shown this once: store it now; only its hash is kept; {_ROTATE})"
    if demo is not None and demo.source == "stored":
        return f"set (shown at first start; {_ROTATE})"
    if demo is not None:
        return "set (from INTERLOCK_MASTER_KEY)"
    if settings.master_key_hash() is not None:
        return "set (from the configuration)"
    return None


def _load(path: Path) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _demo_fleet() -> Iterator[Path]:
    """Start the demo simulators and write the demo config that points at them."""
    cpu_config = SimConfig(name="sim-cpu", models=("sim-small", "sim-embed"), ttft_ms=15, tpot_ms=8)
    gpu_config = SimConfig(name="sim-gpu", models=("sim-large",), ttft_ms=40, tpot_ms=15, max_concurrency=32)
    with SimProcess(cpu_config) as cpu, SimProcess(gpu_config) as gpu:
        data = demo_settings(cpu.base_url, gpu.base_url)
        DEMO_DIR.mkdir(parents=True, exist_ok=True)
        path = DEMO_DIR / "demo-config.yaml"
        path.write_text(
            "# Written by `interlock up` for its demo fleet; regenerated on every start.\n"
            + yaml.safe_dump(data, sort_keys=False),
            encoding="utf-8",
        )
        yield path


def _announce(host: str, port: int, key_line: str | None, settings: Settings, *, demo: bool) -> None:
    console.soft_wrap = True
    url = f"http://{host}:{port}"
    console.print(f"[bold green]Interlock[/bold green] serving on [bold]{url}/v1[/bold]", highlight=False)
    console.print(f"  models: {', '.join(settings.models) or 'none configured'}", highlight=False)
    console.print(
        f"  dashboard: {url}/ui   metrics: {url}/metrics   admin API: {url}/admin/docs", highlight=False
    )
    if demo:
        console.print("  demo fleet: simulated backends in pools cpu and gpu", highlight=False)
    if key_line:
        console.print(f"  master key: {key_line}", highlight=False, markup=False)
        console.print("  create scoped keys with `interlock keys create`", highlight=False, markup=False)
    else:
        console.print("  [yellow]no master key configured: the admin API is disabled[/yellow]")
    console.print(
        f'  try:    curl {url}/v1/chat/completions -H "Authorization: Bearer $KEY" '
        '-H "Content-Type: application/json" '
        """-d '{"model":"chat","messages":[{"role":"user","content":"hi"}]}'""",
        highlight=False,
        markup=False,
    )
