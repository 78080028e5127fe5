"""Balancers: pick one deployment of a model for a request.

Each balancer sees the candidate deployments (already filtered by health, labels and pools) and the
request's routing hints, and reads live load from a shared :class:`~interlock.routing.load.LoadTracker`.
The same classes drive the gateway and the replica-routing simulation in ``benchmarks/``.
"""

from __future__ import annotations

from interlock.routing.balancers.base import Balancer, RouteHints, prompt_text
from interlock.routing.balancers.cost import CostAware
from interlock.routing.balancers.least import LeastOutstanding
from interlock.routing.balancers.p2c import PeakEwmaP2C
from interlock.routing.balancers.prefix import PrefixAffinity
from interlock.routing.balancers.session import SessionAffinity
from interlock.routing.balancers.simple import RoundRobin, WeightedRandom

__all__ = [
    "Balancer",
    "CostAware",
    "LeastOutstanding",
    "PeakEwmaP2C",
    "PrefixAffinity",
    "RoundRobin",
    "RouteHints",
    "SessionAffinity",
    "WeightedRandom",
    "prompt_text",
]
