"""Watch a gateway's deployments during a drill: ``GET /admin/deployments`` every few milliseconds,
kept as a timeline of breaker states, and the admin calls a drill makes (disable, enable)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

__all__ = [
    "AdminClient",
    "AdminError",
    "DeploymentMonitor",
    "DeploymentSample",
    "first_open_after",
    "settled_closed_after",
]


class AdminError(Exception):
    """An admin call failed; the message says how."""


class AdminClient:
    """The few admin routes a drill uses, with the master key."""

    def __init__(self, session: aiohttp.ClientSession, gateway: str, key: str) -> None:
        self._session = session
        self._base = gateway.rstrip("/") + "/admin"
        self._headers = {"Authorization": f"Bearer {key}"}

    async def deployments(self, timeout_s: float = 2.0) -> list[dict[str, Any]]:
        data = await self._call("GET", "/deployments", timeout_s)
        listing: list[dict[str, Any]] = data["data"]
        return listing

    async def set_enabled(self, deployment_id: str, enabled: bool) -> None:
        verb = "enable" if enabled else "disable"
        await self._call("POST", f"/deployments/{quote(deployment_id, safe='')}/{verb}", 5.0)

    async def _call(self, method: str, path: str, timeout_s: float) -> Any:
        try:
            async with self._session.request(
                method,
                self._base + path,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                body = await response.read()
                if response.status != 200:
                    raise AdminError(f"{method} /admin{path}: {response.status} {_message(body)}")
                return orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AdminError(f"{method} /admin{path}: {type(exc).__name__} {exc}") from None


def _message(body: bytes) -> str:
    try:
        return str(orjson.loads(body)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body[:200].decode(errors="replace")


@dataclass(frozen=True, slots=True)
class DeploymentSample:
    """The state of one model's deployments at one moment (seconds from the drill's origin)."""

    at_s: float
    states: Mapping[str, str]
    """Deployment id → ``closed``, ``open``, ``half_open``, ``disabled`` or ``unhealthy``."""
    opened: Mapping[str, int]
    """Deployment id → how many times its breaker has opened so far."""


@dataclass(slots=True)
class DeploymentMonitor:
    """Polls the admin API until stopped; ``samples`` is the timeline, ``failed`` the polls lost."""

    admin: AdminClient
    model: str
    origin: float
    interval_s: float
    samples: list[DeploymentSample] = field(default_factory=list)
    failed: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                listing = await self.admin.deployments(timeout_s=max(1.0, self.interval_s * 10))
            except AdminError:
                self.failed += 1
            else:
                # the state was read somewhere within the call: its end is the honest (late) bound
                self.samples.append(self._sample(listing, time.monotonic()))
            remaining = self.interval_s - (time.monotonic() - started)
            if remaining > 0:
                try:
                    async with asyncio.timeout(remaining):
                        await stop.wait()
                except TimeoutError:
                    pass

    def _sample(self, listing: list[dict[str, Any]], seen: float) -> DeploymentSample:
        mine = [d for d in listing if d.get("model") == self.model]
        return DeploymentSample(
            at_s=seen - self.origin,
            states={d["id"]: str(d.get("state")) for d in mine},
            opened={d["id"]: int(d.get("breaker", {}).get("opened_count", 0)) for d in mine},
        )


def first_open_after(
    samples: Iterable[DeploymentSample], watched: Iterable[str] | None, since: float
) -> tuple[float, str] | None:
    """The first moment at or after ``since`` that a watched deployment's breaker is seen open (or
    has opened since the last sample before ``since``): ``(seconds after since, deployment)``.
    ``watched`` None means any deployment."""
    before: dict[str, int] = {}
    wanted = None if watched is None else set(watched)
    for sample in samples:
        ids = [d for d in sample.states if wanted is None or d in wanted]
        if sample.at_s < since:
            before = {d: sample.opened.get(d, 0) for d in ids}
            continue
        for d in ids:
            if sample.states[d] == "open" or sample.opened.get(d, 0) > before.get(d, 0):
                return max(0.0, sample.at_s - since), d
    return None


def settled_closed_after(
    samples: Iterable[DeploymentSample], watched: Iterable[str], since: float
) -> float | None:
    """Seconds after ``since`` from which every watched deployment is ``closed`` in every later
    sample; None when they are not closed by the last sample."""
    wanted = set(watched)
    settled: float | None = None
    for sample in samples:
        if sample.at_s < since:
            continue
        closed = all(sample.states.get(d) == "closed" for d in wanted)
        if not closed:
            settled = None
        elif settled is None:
            settled = sample.at_s - since
    return settled
