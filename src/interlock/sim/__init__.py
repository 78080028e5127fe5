"""The backend simulator: a real OpenAI-compatible HTTP server that behaves like an LLM engine.

It answers chat completions (streaming or not, tools, structured output) and embeddings for any model
name, with deterministic text, a prefix cache, a concurrency limit with a FIFO queue, and timing drawn
from time-to-first-token, prefill and per-token costs. Faults (errors, latency, hangs, resets, cut
streams, garbage) are set at run time through ``/sim/faults``; ``/sim/stats`` shows what happened.

Run it with ``interlock sim`` or ``python -m interlock.sim``; in tests use :class:`SimServerThread`,
in benchmarks :class:`SimProcess`. Both have the blocking controls of :class:`SimControls`::

    with SimServerThread(SimConfig(ttft_ms=0, tpot_ms=0)) as sim:
        sim.set_faults(error_rate=1, error_status=429)
        ...  # point the gateway at sim.base_url
        assert sim.stats()["errors_injected"] > 0
"""

from __future__ import annotations

from interlock.sim.app import SimApp, create_sim_app
from interlock.sim.config import SimConfig
from interlock.sim.control import SimControls
from interlock.sim.faults import Faults
from interlock.sim.runner import SimProcess, SimServerThread, config_to_args, serve

__all__ = [
    "Faults",
    "SimApp",
    "SimConfig",
    "SimControls",
    "SimProcess",
    "SimServerThread",
    "config_to_args",
    "create_sim_app",
    "serve",
]
