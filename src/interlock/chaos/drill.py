"""Run a drill: traffic, the scenario's actions and the breaker monitor at once, then the report.

Against a running gateway (:class:`DrillTarget` with its URL and keys), or against a fleet the drill
starts itself (:func:`run_fleet_drill`: simulators and ``interlock up`` from the scenario).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from interlock.chaos.actions import ActionRunner
from interlock.chaos.fleet import Fleet
from interlock.chaos.monitor import AdminClient, AdminError, DeploymentMonitor
from interlock.chaos.report import DrillReport, analyse
from interlock.chaos.scenario import Scenario
from interlock.chaos.traffic import TrafficPlan, drive, new_session

__all__ = ["DrillError", "DrillTarget", "run_drill", "run_drill_sync", "run_fleet_drill"]

Log = Callable[[str], None]


class DrillError(RuntimeError):
    """The drill cannot start (gateway unreachable, model unknown …); the message says why."""


@dataclass(frozen=True, slots=True)
class DrillTarget:
    """Where a drill runs."""

    gateway: str
    key: str
    """Sent with the traffic."""
    admin_key: str | None = None
    """The master key, to read breaker states and disable/enable deployments."""
    sims: Mapping[str, str] = field(default_factory=dict)
    """Simulator name → URL, for the scenario's ``sim:`` references."""
    fleet: Fleet | None = None

    @classmethod
    def of_fleet(cls, fleet: Fleet) -> DrillTarget:
        return cls(fleet.gateway_url, fleet.master_key, fleet.master_key, fleet.sim_urls, fleet)


async def run_drill(scenario: Scenario, target: DrillTarget, log: Log | None = None) -> DrillReport:
    """Drive the scenario's traffic, run its actions on time, and measure."""
    say = log or (lambda _: None)
    async with new_session() as session:
        await _check_model(session, target, scenario.model)
        admin, listing, notes = await _admin(session, target)
        deployments = _fleet_deployments(target, scenario.model, listing)
        _check_refs(scenario, deployments, listing)
        measure = scenario.measure
        # whole requests in the warm-up, so that request `warm` is due exactly at the origin
        warm = round(measure.warmup_s * scenario.rps)
        origin = time.monotonic() + warm / scenario.rps + 0.05
        plan = TrafficPlan(
            gateway=target.gateway,
            key=target.key,
            model=scenario.model,
            rps=scenario.rps,
            start=origin - warm / scenario.rps,
            count=warm + max(1, round(scenario.phases.total_s * scenario.rps)),
            stream=scenario.stream,
            max_tokens=scenario.max_tokens,
            timeout_s=scenario.request_timeout_s,
        )
        runner = ActionRunner(
            session,
            sims=target.sims,
            deployments=deployments,
            admin=admin if listing is not None else None,
            fleet=target.fleet,
            origin=origin,
            log=say,
        )
        stop = asyncio.Event()
        monitor = None
        if admin is not None and listing is not None:
            monitor = DeploymentMonitor(admin, scenario.model, origin, measure.poll_s)
        say(
            f"driving {scenario.rps:g} rps at {scenario.model} for {plan.duration_s:g} s "
            f"(warm-up {warm / scenario.rps:g} s, {_phase_text(scenario)})"
        )
        watcher = asyncio.create_task(monitor.run(stop)) if monitor is not None else None
        actions = asyncio.create_task(runner.run(scenario.schedule()))
        try:
            records = await drive(session, plan, origin)
            await actions
        finally:
            stop.set()
            if not actions.done():
                actions.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await actions
            if watcher is not None:
                await watcher
    if monitor is not None and monitor.failed:
        notes.append(f"{monitor.failed} admin polls failed (of {monitor.failed + len(monitor.samples)})")
    return analyse(
        scenario,
        gateway=target.gateway,
        fleet=target.fleet is not None,
        records=records,
        samples=monitor.samples if monitor is not None else (),
        actions=runner.records,
        monitored=monitor is not None,
        notes=notes,
    )


def _phase_text(scenario: Scenario) -> str:
    p = scenario.phases
    return f"baseline {p.baseline:g} s, fault {p.fault:g} s, recovery {p.recovery:g} s"


async def _check_model(session: aiohttp.ClientSession, target: DrillTarget, model: str) -> None:
    url = target.gateway.rstrip("/") + "/v1/models"
    try:
        async with session.get(
            url, headers={"Authorization": f"Bearer {target.key}"}, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise DrillError(
                    f"GET {url} answered {response.status}: {body[:200].decode(errors='replace')}"
                )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DrillError(f"cannot reach the gateway at {target.gateway}: {exc}") from None
    served = [m.get("id") for m in orjson.loads(body).get("data", [])]
    if model not in served:
        raise DrillError(
            f"the gateway does not serve model '{model}' (it serves: {', '.join(map(str, served))})"
        )


async def _admin(
    session: aiohttp.ClientSession, target: DrillTarget
) -> tuple[AdminClient | None, list[dict[str, Any]] | None, list[str]]:
    if not target.admin_key:
        note = "no master key: breaker states unknown; time to detect is taken from what clients saw"
        return None, None, [note]
    admin = AdminClient(session, target.gateway, target.admin_key)
    try:
        listing = await admin.deployments()
    except AdminError as exc:
        return admin, None, [f"admin API not usable ({exc}); time to detect is taken from what clients saw"]
    return admin, listing, []


def _fleet_deployments(
    target: DrillTarget, model: str, listing: list[dict[str, Any]] | None
) -> dict[str, str]:
    """Fleet simulator name → the id of its deployment of ``model``."""
    if target.fleet is None or listing is None:
        return {}
    by_provider = {d["provider"]: d["id"] for d in listing if d.get("model") == model}
    return {name: by_provider[p] for name, p in target.fleet.providers.items() if p in by_provider}


def _check_refs(
    scenario: Scenario, deployments: Mapping[str, str], listing: list[dict[str, Any]] | None
) -> None:
    if listing is None:
        return
    known = {d["id"] for d in listing}
    for index, action in enumerate(scenario.actions):
        ref = action.deployment_ref
        if ref is not None and deployments.get(ref, ref) not in known:
            raise DrillError(
                f"actions[{index}].deployment: the gateway has no deployment '{ref}' "
                f"(known: {', '.join(sorted(known))})"
            )


def run_drill_sync(scenario: Scenario, target: DrillTarget, log: Log | None = None) -> DrillReport:
    """:func:`run_drill` in a fresh event loop (uvloop when available)."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run_drill(scenario, target, log))


def run_fleet_drill(scenario: Scenario, log: Log | None = None) -> DrillReport:
    """Start the scenario's fleet, run the drill against it, stop everything."""
    say = log or (lambda _: None)
    count = len(scenario.fleet.simulators) if scenario.fleet else 0
    say(f"starting the fleet: {count} simulators and a gateway")
    with Fleet(scenario) as fleet:
        say(
            f"gateway {fleet.gateway_url}; simulators "
            + ", ".join(f"{n} {u}" for n, u in fleet.sim_urls.items())
        )
        return run_drill_sync(scenario, DrillTarget.of_fleet(fleet), log)
