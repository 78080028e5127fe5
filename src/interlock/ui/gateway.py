"""What the dashboard reads of the running gateway.

The server builds the gateway (``server.runtime.Runtime``) and mounts the dashboard on it; the
dashboard sees it only through :class:`Gateway`, so ``ui`` does not import ``server``, which imports
``ui``.
"""

from __future__ import annotations

from typing import Protocol

from interlock.config.schema import Settings
from interlock.governance.keys import KeyCache
from interlock.routing.snapshot import SnapshotRef
from interlock.routing.state import RoutingState
from interlock.store import Store
from interlock.telemetry.recorder import Telemetry

__all__ = ["Gateway"]


class Gateway(Protocol):
    """The live parts of a gateway the dashboard reads (``server.runtime.Runtime`` has them all)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def snapshot(self) -> SnapshotRef: ...
    @property
    def routing(self) -> RoutingState: ...
    @property
    def keys(self) -> KeyCache: ...
    @property
    def telemetry(self) -> Telemetry: ...
    @property
    def store(self) -> Store | None:
        """The store, once the gateway has opened it."""
        ...
