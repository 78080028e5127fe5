"""The line in front of a deployment's concurrency limit: fair between callers, interactive first.

Waiters are grouped by priority class (interactive before batch) and, within a class, by tenant
(the caller's key). A freed slot goes to the first tenant in turn of the highest class that has
anyone waiting, and that tenant goes to the back of the turn — round robin, so a key with a hundred
requests in line gets one slot for each one the other keys get, and a key with one request waiting
never waits behind another key's hundred.

When the line is full, the newcomer is not simply refused: the tenant holding the most places (in
the lowest class first) gives up its newest one, unless that would leave it with fewer than the
newcomer's tenant. A key that floods a model therefore receives the 429s its flood causes, not the
keys beside it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from interlock.core.context import Priority

__all__ = ["FairQueue"]

_CLASSES: tuple[Priority, ...] = ("interactive", "batch")


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

    def push(self, priority: Priority, tenant: str, waiter: asyncio.Future[None]) -> None:
        line = self._lines[priority].get(tenant)
        if line is None:
            line = self._lines[priority][tenant] = deque()
        line.append(waiter)
        self._size += 1
        self._counts[priority] += 1

    def pop(self, classes: tuple[Priority, ...] = _CLASSES) -> asyncio.Future[None] | None:
        """The next waiter in turn among ``classes`` (highest class first), or None."""
        for priority in classes:
            tenants = self._lines[priority]
            if not tenants:
                continue
            tenant = next(iter(tenants))
            line = tenants.pop(tenant)
            waiter = line.popleft()
            if line:
                tenants[tenant] = line  # to the back of the turn
            self._size -= 1
            self._counts[priority] -= 1
            return waiter
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

    def make_room_for(self, priority: Priority, tenant: str) -> asyncio.Future[None] | None:
        """Take out the waiter that should give its place to a newcomer from ``tenant``: the newest of
        the tenant with the most places in the lowest class below or at ``priority``. None when
        nobody holds more places than fairness allows (the newcomer is the one to refuse)."""
        rank = _CLASSES.index(priority)
        for victim_class in reversed(_CLASSES[rank:]):
            tenants = self._lines[victim_class]
            if not tenants:
                continue
            heaviest = max(tenants, key=lambda name: len(tenants[name]))
            if victim_class == priority:
                own = len(tenants.get(tenant, ()))
                if heaviest == tenant or len(tenants[heaviest]) <= own + 1:
                    return None
            line = tenants[heaviest]
            waiter = line.pop()
            if not line:
                del tenants[heaviest]
            self._size -= 1
            self._counts[victim_class] -= 1
            return waiter
        return None
