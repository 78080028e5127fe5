"""How much traffic a simulator can serve, computed from its settings.

With every one of ``max_concurrency`` slots busy, a request holds its slot for its prefill
(``ttft_ms`` plus ``prefill_ms_per_token`` for each uncached prompt token) and one decode step for each
further output token, each step slowed by the full batch (``batch_penalty`` per other sequence).
The most requests a simulator completes per second is then ``max_concurrency`` divided by the mean
time a slot is held; offered more, its FIFO queue grows without end (or, with ``max_queue`` set, it
answers ``queue_full_status``). Capacity tests and benchmarks offer traffic as fractions of this
figure and confirm it by calling the simulator directly in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from interlock.sim.config import SimConfig

__all__ = ["RequestShape", "capacity_rps", "slot_seconds"]


@dataclass(frozen=True, slots=True)
class RequestShape:
    """One kind of request in a traffic mix: prompt tokens not in the prefix cache, output tokens."""

    uncached_prompt_tokens: int
    output_tokens: int


def slot_seconds(config: SimConfig, shape: RequestShape, batch: int | None = None) -> float:
    """Seconds a request of ``shape`` holds its slot while ``batch`` sequences decode (default: full)."""
    batch = config.max_concurrency if batch is None else batch
    prefill_ms = config.ttft_ms + config.prefill_ms_per_token * shape.uncached_prompt_tokens
    step_ms = config.tpot_ms * (1 + config.batch_penalty * max(batch - 1, 0))
    return (prefill_ms + max(shape.output_tokens - 1, 0) * step_ms) / 1000


def capacity_rps(config: SimConfig, mix: Sequence[RequestShape]) -> float:
    """Requests per second one simulator completes at most, for traffic drawn evenly from ``mix``."""
    if not mix:
        raise ValueError("the traffic mix is empty")
    mean = sum(slot_seconds(config, shape) for shape in mix) / len(mix)
    return config.max_concurrency / mean if mean > 0 else float("inf")
