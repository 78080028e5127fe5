"""Live load and latency of each deployment, as the balancers see it.

Peak-EWMA (as in Finagle and Linkerd): a sample above the average replaces it at once, so a replica
that turns slow is noticed on its first slow answer; below the average it decays in with a
time-based weight, so a recovered replica earns traffic back gradually. Averages are kept per kind
of latency and compared like with like (:mod:`interlock.routing.latency`): streams' time to first
token, complete answers' time per output token, embeddings calls' time — a long answer is not a
slow server. A failure counts as a first-token sample of ``failure_penalty_s`` and multiplies the
other averages tenfold; a ``Retry-After`` keeps the deployment out until it passes. The clock is
injected so the replica-routing simulation can run the same code on virtual time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from interlock.routing.latency import LatencyKind, LatencySample

__all__ = ["DeploymentLoad", "LoadTracker"]


@dataclass(slots=True)
class DeploymentLoad:
    """What is known of one deployment right now."""

    in_flight: int = 0
    ewma_ttft_s: float = 0.0
    samples: int = 0
    last_sample_at: float = 0.0
    blocked_until: float = 0.0
    requests: int = 0
    failures: int = 0
    ttft_samples: list[float] = field(default_factory=list)
    other: dict[LatencyKind, tuple[float, float]] = field(default_factory=dict)
    """Peak-EWMA of the other kinds of latency: kind → (average, when last sampled)."""
    pending: dict[int, float] = field(default_factory=dict)
    """Calls still waiting for their first byte: ticket → when it was due (start + expected), in
    the order they started."""

    def lateness(self, now: float) -> float:
        """How far past its due time the oldest call still waiting for its first byte is: a hung or
        stalled deployment shows here long before any of its calls finishes."""
        if not self.pending:
            return 0.0
        return max(0.0, now - next(iter(self.pending.values())))

    def cost_of(self, kind: LatencyKind, now: float, decay_s: float) -> float:
        """Expected wait for a new request of ``kind``: its own kind's average when measured, else
        the first-token one."""
        if kind != "first_token":
            entry = self.other.get(kind)
            if entry is not None:
                average, at = entry
                decayed = average * math.exp(-max(0.0, now - at) / decay_s)
                return decayed * (self.in_flight + 1) + self.lateness(now)
        return self.cost(now, decay_s)

    def cost(self, now: float, decay_s: float) -> float:
        """Peak-EWMA cost: expected wait for a new request (latency × queue position).

        The average decays towards zero while no sample arrives, as Finagle's and Linkerd's do:
        a deployment that failed (or was slow) once and then got no traffic earns a try again
        instead of being avoided forever. An unmeasured deployment costs nothing, so a new or
        restarted replica is tried at once.
        """
        if not self.samples:
            return self.lateness(now)
        latency = self.ewma_ttft_s * math.exp(-max(0.0, now - self.last_sample_at) / decay_s)
        return latency * (self.in_flight + 1) + self.lateness(now)


class LoadTracker:
    """Per-deployment in-flight counts and latency averages."""

    def __init__(
        self,
        *,
        decay_s: float = 5.0,
        failure_penalty_s: float = 1.0,
        keep_samples: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loads: dict[str, DeploymentLoad] = {}
        self._decay_s = decay_s
        self._penalty_s = failure_penalty_s
        self._keep = keep_samples
        self._tickets = 0
        self.clock = clock

    def get(self, deployment_id: str) -> DeploymentLoad:
        load = self._loads.get(deployment_id)
        if load is None:
            load = self._loads[deployment_id] = DeploymentLoad()
        return load

    def cost(self, deployment_id: str, kind: LatencyKind = "first_token") -> float:
        return self.get(deployment_id).cost_of(kind, self.clock(), self._decay_s)

    def blocked(self, deployment_id: str) -> bool:
        """Inside a ``Retry-After`` period."""
        return self.get(deployment_id).blocked_until > self.clock()

    def start(self, deployment_id: str, due_in_s: float | None = None) -> int:
        """A call starts; with ``due_in_s`` (when its first byte should have come) it is watched
        for lateness until :meth:`answered`. Returns its ticket."""
        load = self.get(deployment_id)
        load.in_flight += 1
        load.requests += 1
        if due_in_s is None:
            return 0
        self._tickets += 1
        load.pending[self._tickets] = self.clock() + due_in_s
        return self._tickets

    def answered(self, deployment_id: str, ticket: int) -> None:
        """The call's first byte came (or it ended)."""
        if ticket:
            self.get(deployment_id).pending.pop(ticket, None)

    def finish(self, deployment_id: str, ticket: int = 0) -> None:
        load = self.get(deployment_id)
        load.in_flight = max(0, load.in_flight - 1)
        if ticket:
            load.pending.pop(ticket, None)

    def observe_ttft(self, deployment_id: str, ttft_s: float) -> None:
        """A successful first token after ``ttft_s`` seconds."""
        load = self.get(deployment_id)
        self._sample(load, ttft_s)
        load.ttft_samples.append(ttft_s)
        if len(load.ttft_samples) > 2 * self._keep:
            del load.ttft_samples[: -self._keep]

    def observe(self, deployment_id: str, sample: LatencySample) -> None:
        """A successful call's latency, of whatever kind."""
        if sample.kind == "first_token":
            self.observe_ttft(deployment_id, sample.seconds)
            return
        load = self.get(deployment_id)
        now = self.clock()
        value = sample.value
        entry = load.other.get(sample.kind)
        if entry is not None and value <= entry[0]:
            weight = math.exp(-(now - entry[1]) / self._decay_s)
            value = entry[0] * weight + value * (1.0 - weight)
        load.other[sample.kind] = (value, now)

    def observe_failure(self, deployment_id: str, retry_after_s: float | None = None) -> None:
        load = self.get(deployment_id)
        load.failures += 1
        self._sample(load, self._penalty_s)
        now = self.clock()
        for kind, (average, _) in list(load.other.items()):
            load.other[kind] = (average * 10.0, now)
        if retry_after_s:
            load.blocked_until = max(load.blocked_until, self.clock() + retry_after_s)

    def ttft_quantile(self, deployment_id: str, q: float) -> float | None:
        """The ``q`` quantile of recent first-token times, or None before enough samples."""
        samples = self.get(deployment_id).ttft_samples[-self._keep :]
        if len(samples) < 10:
            return None
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def _sample(self, load: DeploymentLoad, value: float) -> None:
        now = self.clock()
        if load.samples == 0 or value > load.ewma_ttft_s:
            load.ewma_ttft_s = value
        else:
            weight = math.exp(-(now - load.last_sample_at) / self._decay_s)
            load.ewma_ttft_s = load.ewma_ttft_s * weight + value * (1.0 - weight)
        load.samples += 1
        load.last_sample_at = now
