"""``interlock sim``: the simulator's command lives with the simulator (``python -m interlock.sim``
runs it without the rest of the CLI); this registers it."""

from __future__ import annotations

from interlock.sim.command import register

__all__ = ["register"]
