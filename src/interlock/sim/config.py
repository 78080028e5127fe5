"""Settings of one simulated inference engine.

A :class:`SimConfig` is parsed once (from CLI flags or by the caller) and never changes while the
simulator runs; faults, which do change at run time, live in :mod:`interlock.sim.faults`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["SimConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """Every setting of the simulator, with defaults that behave like a small, healthy vLLM replica.

    Timing: time to first token is ``ttft_ms + prefill_ms_per_token * uncached_prompt_tokens``; each
    further token takes ``tpot_ms * (1 + batch_penalty * (batch_size - 1))``, where ``batch_size`` is
    the number of sequences decoding at that moment. With every delay at 0 the simulator never sleeps.
    """

    #: Interface to listen on.
    host: str = "127.0.0.1"
    #: TCP port; 0 picks a free port (the runners report the one chosen).
    port: int = 0
    #: A label for this replica, shown in ``/sim/stats`` and in ``system_fingerprint`` so tests can
    #: tell which of several simulators answered.
    name: str = "sim"
    #: Names listed by ``GET /v1/models``. Completions answer to any model name.
    models: tuple[str, ...] = ("sim-small", "sim-large")
    #: Base time to first token, in milliseconds.
    ttft_ms: float = 20.0
    #: Prefill cost per prompt token that is not in the prefix cache, in milliseconds.
    prefill_ms_per_token: float = 0.05
    #: Time per output token with a batch of one, in milliseconds.
    tpot_ms: float = 10.0
    #: Relative slow-down of each decode step per extra sequence in the batch.
    batch_penalty: float = 0.02
    #: Sequences served at once; further requests wait in a FIFO queue.
    max_concurrency: int = 64
    #: Longest queue allowed; ``None`` means unbounded. Beyond it requests get ``queue_full_status``.
    max_queue: int | None = None
    #: Status answered when the queue is full: 503 (like an overloaded engine) or 429.
    queue_full_status: int = 503
    #: Seconds advertised in ``Retry-After`` when the queue is full.
    queue_full_retry_after_s: float = 1.0
    #: Largest prompt plus completion, in tokens.
    context_window: int = 32768
    #: Cap on generated tokens when a request sets neither ``max_tokens`` nor ``max_completion_tokens``.
    default_max_tokens: int = 64
    #: Range of the "natural" answer length, picked per answer from its hash.
    output_tokens_min: int = 16
    output_tokens_max: int = 64
    #: Prefix cache block size in tokens, and its capacity in blocks (0 turns the cache off).
    prefix_block_size: int = 16
    prefix_cache_blocks: int = 8192
    #: Dimension of ``/v1/embeddings`` vectors unless a request asks for ``dimensions``.
    embedding_dim: int = 384
    #: When set, ``/v1/*`` requests need ``Authorization: Bearer <api_key>``.
    api_key: str | None = None
    #: Seed of the fault dice and of the generated text.
    seed: int = 0

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid simulator config: " + "; ".join(problems))

    def _problems(self) -> Iterator[str]:
        if not 0 <= self.port <= 65535:
            yield f"port must be 0..65535, got {self.port}"
        if not self.models or any(not m for m in self.models):
            yield "models must be a non-empty list of non-empty names"
        for name in (
            "ttft_ms",
            "prefill_ms_per_token",
            "tpot_ms",
            "batch_penalty",
            "queue_full_retry_after_s",
        ):
            if getattr(self, name) < 0:
                yield f"{name} must be >= 0"
        if self.max_concurrency < 1:
            yield "max_concurrency must be >= 1"
        if self.max_queue is not None and self.max_queue < 0:
            yield "max_queue must be >= 0"
        if self.queue_full_status not in (429, 503):
            yield "queue_full_status must be 429 or 503"
        if self.context_window < 1:
            yield "context_window must be >= 1"
        if self.default_max_tokens < 1:
            yield "default_max_tokens must be >= 1"
        if not 1 <= self.output_tokens_min <= self.output_tokens_max:
            yield "need 1 <= output_tokens_min <= output_tokens_max"
        if self.prefix_block_size < 1 or self.prefix_cache_blocks < 0:
            yield "prefix_block_size must be >= 1 and prefix_cache_blocks >= 0"
        if not 1 <= self.embedding_dim <= 65536:
            yield "embedding_dim must be 1..65536"

    @property
    def instant(self) -> bool:
        """True when no setting asks for a delay, so requests can be answered without waiting."""
        return self.ttft_ms == 0 and self.prefill_ms_per_token == 0 and self.tpot_ms == 0

    def with_changes(self, **changes: Any) -> SimConfig:
        """A copy with some settings replaced (validated like a new config)."""
        return replace(self, **changes)
