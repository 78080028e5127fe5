"""A self-contained drill fleet: simulator processes and a gateway process (``interlock up --config``)
in front of them, on free loopback ports, with a config written for the scenario.

Every simulator is a provider ``sim-<name>``; the scenario's model gets one deployment on each, in
the order the fleet lists them. The fleet can SIGKILL a simulator (a dead deployment: connections
reset, new ones refused) and start it again on the same port. Everything it started is stopped on
exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from interlock.chaos.scenario import Scenario
from interlock.server.thread import free_port
from interlock.sim import SimProcess

__all__ = ["Fleet", "FleetError", "fleet_config"]

# `interlock up` as a module call, so the fleet runs the same gateway whichever way it was installed.
_LAUNCH = "import sys; from interlock.cli.main import main; sys.argv[0] = 'interlock'; main()"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FleetError(RuntimeError):
    """The fleet could not start; the message says which part and why."""


def fleet_config(scenario: Scenario, sim_urls: Mapping[str, str], store_dir: Path, master_key: str) -> str:
    """The gateway config (YAML) for ``scenario``'s fleet with simulators at ``sim_urls``."""
    fleet = scenario.fleet
    assert fleet is not None
    providers = {
        f"sim-{name}": {**fleet.provider, "kind": "openai", "base_url": url + "/v1"}
        for name, url in sim_urls.items()
    }
    deployments = [{"provider": f"sim-{name}", "model": fleet.upstream_model} for name in sim_urls]
    data: dict[str, Any] = {
        "master_key": master_key,
        "store": f"sqlite:///{store_dir.resolve()}/interlock.db",
        "providers": providers,
        "models": {scenario.model: {**fleet.model, "deployments": deployments}},
    }
    return "# Written by `interlock chaos --fleet`.\n" + yaml.safe_dump(data, sort_keys=False)


class Fleet:
    """Simulators and a gateway for one scenario. Use as a context manager."""

    def __init__(self, scenario: Scenario, *, start_timeout_s: float = 30.0) -> None:
        if scenario.fleet is None:
            raise FleetError(f"scenario '{scenario.name}' has no 'fleet' section: nothing to start")
        self.scenario = scenario
        self.master_key = "sk-chaos-" + secrets.token_urlsafe(18)
        self.start_timeout_s = start_timeout_s
        self.sims: dict[str, SimProcess] = {}
        self.gateway_url = ""
        self.config_path: Path | None = None
        self._gateway: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    @property
    def providers(self) -> dict[str, str]:
        """Simulator name → the provider name it has in the gateway's config."""
        return {name: f"sim-{name}" for name in self.sims}

    @property
    def pids(self) -> list[int]:
        """Process ids of the gateway and the simulators now running (to meter their CPU time)."""
        procs = [self._gateway, *(sim.process for sim in self.sims.values())]
        return [p.pid for p in procs if p is not None and p.poll() is None]

    @property
    def sim_urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self.sims.items()}

    def start(self) -> None:
        """Start the simulators and the gateway at once (ports picked first), and wait for all."""
        fleet = self.scenario.fleet
        assert fleet is not None
        self._tmp = tempfile.TemporaryDirectory(prefix="interlock-chaos-")
        tmp = Path(self._tmp.name)
        self.sims = {
            name: SimProcess(spec.to_config(name).with_changes(port=free_port()))
            for name, spec in fleet.simulators.items()
        }
        self.config_path = tmp / "gateway.yaml"
        self.config_path.write_text(
            fleet_config(self.scenario, self.sim_urls, tmp, self.master_key), encoding="utf-8"
        )
        with ThreadPoolExecutor(max_workers=len(self.sims) + 1) as pool:
            futures = [pool.submit(s.start) for s in self.sims.values()]
            futures.append(pool.submit(self._start_gateway, tmp))
            failures = [f.exception() for f in futures]
        problems = [str(exc) for exc in failures if exc is not None]
        if problems:
            raise FleetError("the fleet did not start: " + "; ".join(problems))

    def _start_gateway(self, tmp: Path) -> None:
        assert self.config_path is not None
        port = free_port()
        log = (tmp / "gateway.log").open("wb")
        command = [
            sys.executable,
            "-c",
            _LAUNCH,
            "up",
            "--config",
            str(self.config_path),
            "--port",
            str(port),
        ]
        with log:
            self._gateway = subprocess.Popen(
                command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.gateway_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.start_timeout_s
        while not self._healthy():
            if self._gateway.poll() is not None or time.monotonic() > deadline:
                tail = (tmp / "gateway.log").read_text(errors="replace")[-2000:]
                raise FleetError(f"the gateway did not start (interlock up --config …):\n{tail}")
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with _OPENER.open(self.gateway_url + "/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def kill(self, name: str) -> None:
        """SIGKILL simulator ``name`` (no goodbye: its connections reset)."""
        with self._lock:
            sim = self.sims[name]
            if sim.process is None:
                raise FleetError(f"simulator '{name}' is not running")
            sim.process.kill()
            sim.process.wait()
            sim.stop()

    def pause(self, name: str, resume: bool = False) -> None:
        """SIGSTOP simulator ``name`` (it hangs: the kernel still accepts connections, nothing
        answers), or SIGCONT it again with ``resume``."""
        with self._lock:
            sim = self.sims[name]
            if sim.process is None:
                raise FleetError(f"simulator '{name}' is not running")
            sim.process.send_signal(signal.SIGCONT if resume else signal.SIGSTOP)

    def restart(self, name: str) -> None:
        """Start simulator ``name`` again on its old port; returns once it is healthy."""
        with self._lock:
            old = self.sims[name]
            if old.process is not None:
                raise FleetError(f"simulator '{name}' is still running")
            sim = SimProcess(old.config.with_changes(port=old.port))
            sim.start()
            self.sims[name] = sim

    def stop(self) -> None:
        """Stop the gateway and every simulator (idempotent)."""
        gateway, self._gateway = self._gateway, None
        if gateway is not None and gateway.poll() is None:
            gateway.terminate()
            try:
                gateway.wait(timeout=10)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait()
        for sim in self.sims.values():
            with contextlib.suppress(Exception):
                if sim.process is not None and sim.process.poll() is None:
                    sim.process.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                sim.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
