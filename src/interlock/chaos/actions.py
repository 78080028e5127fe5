"""Carry out a scenario's actions on time: faults and clears over the simulators' HTTP controls,
kills and restarts of fleet simulators, disables and enables over the admin API.

An action that fails is recorded with the reason and the drill goes on: a drill reports what
happened rather than stopping half-way with traffic still flowing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from interlock.chaos.fleet import Fleet
from interlock.chaos.monitor import AdminClient, AdminError
from interlock.chaos.scenario import (
    Action,
    ClearAction,
    DisableAction,
    EnableAction,
    FaultAction,
    KillAction,
    RestartAction,
    ResumeAction,
    StopAction,
)

__all__ = ["ActionRecord", "ActionRunner"]


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action as it happened. Times in seconds from the drill's origin."""

    kind: str
    target: str
    planned_s: float
    started_s: float
    done_s: float
    ok: bool
    detail: str = ""
    deployments: tuple[str, ...] = ()
    """The deployments this action concerns, where known."""


class ActionRunner:
    """Runs actions against one gateway, its simulators and (optionally) the fleet that started them."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        sims: Mapping[str, str],
        deployments: Mapping[str, str],
        admin: AdminClient | None,
        fleet: Fleet | None,
        origin: float,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._session = session
        self._sims = sims
        self._deployments = deployments
        self._admin = admin
        self._fleet = fleet
        self._origin = origin
        self._log = log
        self.records: list[ActionRecord] = []

    async def run(self, schedule: Sequence[tuple[float, Action]]) -> list[ActionRecord]:
        """Run each action at its time (seconds from the origin), one after the other."""
        for planned, action in schedule:
            delay = self._origin + planned - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.monotonic() - self._origin
            try:
                detail = await self._do(action)
                ok = True
            except (AdminError, aiohttp.ClientError, OSError, RuntimeError, ValueError, TimeoutError) as exc:
                detail, ok = f"failed: {exc}", False
            record = ActionRecord(
                kind=action.do,
                target=self._describe(action),
                planned_s=planned,
                started_s=started,
                done_s=time.monotonic() - self._origin,
                ok=ok,
                detail=detail,
                deployments=self._concerns(action),
            )
            self.records.append(record)
            if self._log is not None:
                status = "ok" if ok else detail
                self._log(f"{record.started_s:+7.2f} s  {record.kind} {record.target}: {status}")
        return self.records

    def _describe(self, action: Action) -> str:
        if isinstance(action, DisableAction | EnableAction):
            return self.deployment_id(action.deployment)
        return action.sim

    def _concerns(self, action: Action) -> tuple[str, ...]:
        explicit = action.deployment_ref
        if explicit is not None:
            return (self.deployment_id(explicit),)
        sim = action.sim_ref
        if sim is not None and sim in self._deployments:
            return (self._deployments[sim],)
        return ()

    def deployment_id(self, ref: str) -> str:
        """A deployment id, from an id or a fleet simulator's name."""
        return self._deployments.get(ref, ref)

    def _sim_url(self, ref: str) -> str:
        if ref.startswith(("http://", "https://")):
            return ref.rstrip("/")
        if ref not in self._sims:
            known = ", ".join(self._sims) or "none: pass --sim NAME=URL"
            raise ValueError(f"no URL for simulator '{ref}' (known: {known})")
        return self._sims[ref].rstrip("/")

    async def _do(self, action: Action) -> str:
        if isinstance(action, FaultAction):
            await self._sim_call("POST", self._sim_url(action.sim) + "/sim/faults", action.faults)
            return ", ".join(f"{k}={v}" for k, v in action.faults.items())
        if isinstance(action, ClearAction):
            await self._sim_call("DELETE", self._sim_url(action.sim) + "/sim/faults", None)
            return "faults cleared"
        if isinstance(action, KillAction | StopAction | ResumeAction | RestartAction):
            if self._fleet is None:
                raise RuntimeError(f"'{action.do}' needs a simulator this tool started: run with --fleet")
            if isinstance(action, KillAction):
                await asyncio.to_thread(self._fleet.kill, action.sim)
                return "SIGKILL"
            if isinstance(action, StopAction | ResumeAction):
                resume = isinstance(action, ResumeAction)
                await asyncio.to_thread(self._fleet.pause, action.sim, resume)
                return "SIGCONT" if resume else "SIGSTOP"
            started = time.monotonic()
            await asyncio.to_thread(self._fleet.restart, action.sim)
            return f"healthy again after {time.monotonic() - started:.2f} s"
        if self._admin is None:
            raise RuntimeError(f"'{action.do}' needs the admin API: pass the master key")
        enable = isinstance(action, EnableAction)
        await self._admin.set_enabled(self.deployment_id(action.deployment), enable)
        return "enabled" if enable else "disabled"

    async def _sim_call(self, method: str, url: str, body: object) -> None:
        async with self._session.request(
            method, url, json=body, timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise ValueError(f"{method} {url}: {response.status} {text[:200]}")
