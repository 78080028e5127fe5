"""Latency judged like with like: is this deployment slow, or was the request just big?

A non-streaming answer of 500 tokens takes seconds on a healthy server; a stream's first token takes
tens of milliseconds. Every latency-driven decision (the concurrency limiter, the balancers' cost,
the breakers' slow-call rule, the hedging delay) therefore reads one :class:`LatencySample` per call,
of one kind and sized by the work it asked for:

- ``first_token``: a stream's time to first token (queueing plus prefill), sized by its prompt;
- ``answer``: a complete answer's time divided by its output tokens plus one, sized by its output;
- ``embedding``: an embeddings call's time, sized by its input;
- ``token_gap``: a finished stream's mean gap between chunks (size 0), so a stream that slows
  down mid-answer can be told from the deployment's usual pace.

:class:`LatencyModel` keeps, per deployment, one bucket per kind and size class (half octaves: sizes
within √2 of each other share a bucket). Each bucket has a short moving average of its samples and a
*baseline*: the lowest that average reached over the last one to two windows (two to four
minutes). The ratio of the two says how much slower than its own recent best the deployment is now,
for requests of this shape —
so a long answer is never mistaken for a slow server, and a server that queues is seen at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Judgement", "LatencyKind", "LatencyModel", "LatencySample"]

LatencyKind = Literal["first_token", "answer", "embedding", "token_gap"]


@dataclass(frozen=True, slots=True)
class LatencySample:
    """What one successful call took, and how much work it was."""

    kind: LatencyKind
    seconds: float
    size: int
    """Prompt tokens (``first_token``), output tokens (``answer``) or input tokens (``embedding``)."""

    @property
    def value(self) -> float:
        """The comparable figure: seconds, or seconds per output token for a complete answer."""
        return self.seconds / (self.size + 1) if self.kind == "answer" else self.seconds


@dataclass(frozen=True, slots=True)
class Judgement:
    """A sample, and what the deployment's baselines make of it."""

    sample: LatencySample
    ratio: float | None
    """Recent latency of requests of this shape over their baseline (None: not enough samples)."""
    excess_s: float
    """Seconds the call took beyond the baseline for its shape (0 when unknown or faster)."""


def _size_class(size: int) -> int:
    # half-octave classes: 0, 1, 2, 3, 4-5, 6-7, 8-11, 12-15, ...
    return int(2 * math.log2(max(size, 0) + 1))


def _upper_size(size_class: int) -> int:
    """The largest size in a size class."""
    return int(2 ** ((size_class + 1) / 2)) - 1


class _Bucket:
    __slots__ = ("average", "current_min", "previous_min", "samples", "window_start")

    def __init__(self, now: float) -> None:
        self.average = 0.0
        self.samples = 0
        self.current_min = math.inf
        self.previous_min = math.inf
        self.window_start = now

    def add(self, value: float, now: float, smoothing: float, window_s: float) -> None:
        self.average = value if not self.samples else self.average + smoothing * (value - self.average)
        self.samples += 1
        if now - self.window_start >= window_s:
            # an idle spell longer than a window forgets both windows
            self.previous_min = self.current_min if now - self.window_start < 2 * window_s else math.inf
            self.current_min = math.inf
            self.window_start = now
        self.current_min = min(self.current_min, self.average)

    @property
    def baseline(self) -> float:
        return min(self.current_min, self.previous_min)


class LatencyModel:
    """One deployment's latency baselines per kind and size. Not thread-safe: one event loop."""

    __slots__ = ("_buckets", "_clock", "_min_samples", "_smoothing", "_window_s")

    def __init__(
        self,
        *,
        window_s: float = 120.0,
        smoothing: float = 0.25,
        min_samples: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets: dict[tuple[LatencyKind, int], _Bucket] = {}
        self._window_s = window_s
        self._smoothing = smoothing
        self._min_samples = min_samples
        self._clock = clock

    def observe(self, sample: LatencySample) -> None:
        """Add a sample to its bucket."""
        self._add(sample)

    def judge(self, sample: LatencySample) -> Judgement:
        """Add ``sample`` and say how slow it was for its shape: its bucket's moving average over its
        baseline (None until the bucket has ``min_samples`` samples), and the seconds it took beyond
        what its shape takes at the baseline."""
        bucket = self._add(sample)
        baseline = bucket.baseline
        if bucket.samples < self._min_samples or not 0 < baseline < math.inf:
            return Judgement(sample, None, 0.0)
        expected = baseline * (sample.size + 1) if sample.kind == "answer" else baseline
        return Judgement(sample, bucket.average / baseline, max(0.0, sample.seconds - expected))

    def _add(self, sample: LatencySample) -> _Bucket:
        key = (sample.kind, _size_class(sample.size))
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(now)
        bucket.add(sample.value, now, self._smoothing, self._window_s)
        return bucket

    def recent(self, kind: LatencyKind, size: int | None) -> float | None:
        """Seconds a call of this kind and size has been taking lately (its bucket's moving average;
        under heavy but healthy load it rises with the engine's batch), if known. An unmeasured size
        is read from the nearest measured one (a complete answer's time per token hardly depends on
        its length); ``size=None`` — an answer of unknown length — takes the longest answers lately."""
        if size is not None:
            exact = self._buckets.get((kind, _size_class(size)))
            if exact is not None and exact.samples >= self._min_samples:
                return exact.average * (size + 1) if kind == "answer" else exact.average
        known = [
            (klass, bucket)
            for (k, klass), bucket in self._buckets.items()
            if k == kind and bucket.samples >= self._min_samples
        ]
        if not known:
            return None
        if size is None:
            return max(b.average * (_upper_size(c) + 1) if kind == "answer" else b.average for c, b in known)
        target = _size_class(size)
        _, bucket = min(known, key=lambda item: abs(item[0] - target))
        return bucket.average * (size + 1) if kind == "answer" else bucket.average
