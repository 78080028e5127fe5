"""The line in front of a deployment's concurrency limit: fair between callers, interactive first.

Waiters are grouped by priority class (interactive before batch) and, within a class, by tenant
(the caller's key). A freed slot goes, in the highest class that has anyone waiting, to the tenant
with the fewest calls in flight on the deployment (max-min fairness; among equals, the one whose
turn it is, and it goes to the back of the turn). So a key that holds most of a deployment's slots
gets a freed one only when no other key is waiting, and a key with one request waiting never waits
behind another key's hundred.

When the line is full, the newcomer is not simply refused: the tenant with the most calls in flight
and waiting (in the lowest class first) gives up its newest place — if it is also the one holding
most of the deployment, and unless that would leave it with fewer than the newcomer's tenant. A key
that floods a model therefore receives the 429s its flood causes, not the keys beside it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping

from interlock.core.context import Priority

__all__ = ["FairQueue"]

_CLASSES: tuple[Priority, ...] = ("interactive", "batch")
_NONE: Mapping[str, int] = {}


class FairQueue:
    """Futures waiting for a slot. Not thread-safe: one event loop."""

    __slots__ = ("_counts", "_lines", "_size")

    def __init__(self) -> None:
        # per class, tenants in turn order (a dict keeps insertion order; the next in turn is first)
        self._lines: dict[Priority, dict[str, deque[asyncio.Future[None]]]] = {c: {} for c in _CLASSES}
        self._counts: dict[Priority, int] = dict.fromkeys(_CLASSES, 0)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def waiting(self, priority: Priority) -> int:
        """How many wait in class ``priority``."""
        return self._counts[priority]

    def waiting_of(self, priority: Priority, tenant: str) -> int:
        """How many of ``tenant``'s requests wait in class ``priority``."""
        return len(self._lines[priority].get(tenant, ()))

    def tenants(self) -> set[str]:
        """Every tenant with someone waiting."""
        return {tenant for line in self._lines.values() for tenant in line}

    def push(self, priority: Priority, tenant: str, waiter: asyncio.Future[None]) -> None:
        line = self._lines[priority].get(tenant)
        if line is None:
            line = self._lines[priority][tenant] = deque()
        line.append(waiter)
        self._size += 1
        self._counts[priority] += 1

    def pop(
        self, classes: tuple[Priority, ...] = _CLASSES, holding: Mapping[str, int] = _NONE
    ) -> tuple[asyncio.Future[None], str] | None:
        """The next waiter among ``classes`` (highest class first) and its tenant: of the tenant with
        the fewest calls in flight (``holding``), the first in turn among equals; None if nobody
        waits."""
        for priority in classes:
            tenants = self._lines[priority]
            if not tenants:
                continue
            tenant = min(tenants, key=lambda name: holding.get(name, 0)) if holding else next(iter(tenants))
            line = tenants.pop(tenant)
            waiter = line.popleft()
            if line:
                tenants[tenant] = line  # to the back of the turn
            self._size -= 1
            self._counts[priority] -= 1
            return waiter, tenant
        return None

    def remove(self, priority: Priority, tenant: str, waiter: asyncio.Future[None]) -> None:
        """Take ``waiter`` out of line (it gave up or was refused); nothing if it is not in line."""
        line = self._lines[priority].get(tenant)
        if line is None or waiter not in line:
            return
        line.remove(waiter)
        self._size -= 1
        self._counts[priority] -= 1
        if not line:
            del self._lines[priority][tenant]

    def make_room_for(
        self, priority: Priority, tenant: str, holding: Mapping[str, int] = _NONE
    ) -> asyncio.Future[None] | None:
        """Take out the waiter that should give its place to a newcomer from ``tenant``: the newest of
        the tenant with the most calls in flight (``holding``) and waiting, in the lowest class below
        or at ``priority``. None when nobody holds more than fairness allows (the newcomer is the
        one to refuse)."""
        rank = _CLASSES.index(priority)
        for victim_class in reversed(_CLASSES[rank:]):
            tenants = self._lines[victim_class]
            if not tenants:
                continue

            def share(name: str, tenants: dict[str, deque[asyncio.Future[None]]] = tenants) -> int:
                return holding.get(name, 0) + len(tenants.get(name, ()))

            heaviest = max(tenants, key=share)
            if victim_class == priority and (
                heaviest == tenant
                or share(heaviest) <= share(tenant) + 1
                or share(heaviest) < max(holding.values(), default=0)  # not the one holding most
            ):
                return None
            line = tenants[heaviest]
            waiter = line.pop()
            if not line:
                del tenants[heaviest]
            self._size -= 1
            self._counts[victim_class] -= 1
            return waiter
        return None
