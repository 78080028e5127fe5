"""Blocking helpers over a running simulator's ``/sim`` control routes, for tests and benchmarks.

:class:`~interlock.sim.SimServerThread` and :class:`~interlock.sim.SimProcess` both inherit them, so
``sim.set_faults(error_rate=1, error_status=429)`` works the same whichever way the simulator runs.
They go through HTTP, like any other client, using only the standard library.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson

__all__ = ["SimControls"]

# Loopback must never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SimControls:
    """Set faults, read and reset counters, check health; subclasses say where the simulator is."""

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the simulator."""
        raise NotImplementedError

    def _control(self, method: str, path: str, body: object = None, timeout: float = 10) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else orjson.dumps(body),
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                data: dict[str, Any] = orjson.loads(response.read())
                return data
        except urllib.error.HTTPError as exc:
            with exc:
                detail = orjson.loads(exc.read()).get("error", {}).get("message", exc.reason)
            raise ValueError(f"the simulator refused {method} {path}: {detail}") from exc

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Put ``faults`` in force, replacing any before (the fields of ``POST /sim/faults``).

        Raises :class:`ValueError` with the simulator's explanation when a fault is invalid.
        """
        result: dict[str, Any] = self._control("POST", "/sim/faults", faults)["faults"]
        return result

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._control("DELETE", "/sim/faults")

    def stats(self) -> dict[str, Any]:
        """The counters of ``GET /sim/stats``."""
        return self._control("GET", "/sim/stats")

    def reset_stats(self) -> dict[str, Any]:
        """Zero the counters; returns them."""
        return self._control("POST", "/sim/stats/reset")

    def reset_prefix_cache(self) -> None:
        """Empty the prefix cache."""
        self._control("POST", "/sim/prefix-cache/reset")

    def healthy(self, timeout: float = 1) -> bool:
        """Whether ``GET /health`` answers ``ok``."""
        try:
            return self._control("GET", "/health", timeout=timeout).get("status") == "ok"
        except (OSError, ValueError):
            return False
