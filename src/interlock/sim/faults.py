"""Faults the simulator can be told to inject, set at run time through ``/sim/faults``.

A :class:`Faults` value is immutable; :class:`FaultState` holds the current one and swaps it whole.
The dice for ``error_rate`` and ``reset_rate`` come from a generator seeded with the config's seed, and
re-seeded on every change, so a test that sets faults then sends requests sees the same outcomes
every run.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["FaultError", "FaultState", "Faults", "parse_faults"]

Garbage = Literal["json", "content_type", "sse"]
_GARBAGE: tuple[Garbage, ...] = ("json", "content_type", "sse")


class FaultError(ValueError):
    """A fault specification that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """One set of faults. The defaults inject nothing."""

    #: Share of requests answered with ``error_status`` (0..1).
    error_rate: float = 0.0
    error_status: int = 500
    #: ``Retry-After`` sent with injected 429 errors, in seconds.
    retry_after_s: float = 1.0
    #: Extra delay before answering (before the first byte of a stream), in milliseconds.
    latency_ms: float = 0.0
    #: Accept requests and answer nothing until the client leaves or the faults change.
    hang: bool = False
    #: Share of requests whose connection is dropped with no response at all (0..1).
    reset_rate: float = 0.0
    #: Close streams after this many content tokens; truncate non-streaming JSON bodies.
    cut_after_tokens: int | None = None
    #: Extra delay between stream chunks, in milliseconds.
    slow_stream_ms: float = 0.0
    #: Every phase (prefill and each decode step) takes this many times longer: a replica turned slow.
    slowdown: float = 1.0
    #: Answer 200 with invalid JSON, an HTML content type, or malformed SSE.
    garbage: Garbage | None = None
    #: Apply the faults only to requests for these models (``None``: every model).
    only_models: frozenset[str] | None = None

    def applies_to(self, model: str) -> bool:
        """Whether these faults concern a request for ``model``."""
        return self.only_models is None or model in self.only_models

    @property
    def any(self) -> bool:
        """Whether any fault is set at all."""
        return self != _NONE

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view, the shape ``POST /sim/faults`` accepts."""
        data = asdict(self)
        if self.only_models is not None:
            data["only_models"] = sorted(self.only_models)
        return data


_NONE = Faults()
_FIELDS = frozenset(Faults.__dataclass_fields__)


def _number(data: dict[str, Any], name: str, low: float, high: float | None) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    # bool is an int in Python, but `true` is not a rate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"'{name}' must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        limit = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise FaultError(f"'{name}' must be {limit}, got {value!r}")
    return float(value)


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"'{name}' must be an integer between {low} and {high}, got {value!r}")
    return value


def parse_faults(data: object) -> Faults:
    """Validate a ``POST /sim/faults`` body into :class:`Faults`; :class:`FaultError` says what is wrong."""
    if not isinstance(data, dict):
        raise FaultError("the body must be a JSON object of faults")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise FaultError(f"unknown fault(s) {unknown}; known: {sorted(_FIELDS)}")
    hang = data.get("hang", False)
    if not isinstance(hang, bool):
        raise FaultError(f"'hang' must be true or false, got {hang!r}")
    garbage = data.get("garbage")
    if garbage is not None and garbage not in _GARBAGE:
        raise FaultError(f"'garbage' must be one of {list(_GARBAGE)}, got {garbage!r}")
    models = data.get("only_models")
    if models is not None and (
        not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models)
    ):
        raise FaultError("'only_models' must be a non-empty list of model names")
    defaults = _NONE
    return Faults(
        error_rate=_pick(_number(data, "error_rate", 0, 1), defaults.error_rate),
        error_status=int(_pick(_integer(data, "error_status", 400, 599), defaults.error_status)),
        retry_after_s=_pick(_number(data, "retry_after_s", 0, None), defaults.retry_after_s),
        latency_ms=_pick(_number(data, "latency_ms", 0, None), defaults.latency_ms),
        hang=hang,
        reset_rate=_pick(_number(data, "reset_rate", 0, 1), defaults.reset_rate),
        cut_after_tokens=_integer(data, "cut_after_tokens", 0, 1 << 30),
        slow_stream_ms=_pick(_number(data, "slow_stream_ms", 0, None), defaults.slow_stream_ms),
        slowdown=_pick(_number(data, "slowdown", 1, 1000), defaults.slowdown),
        garbage=garbage,
        only_models=frozenset(models) if models is not None else None,
    )


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


class FaultState:
    """The faults in force, the seeded dice, and a signal for whoever waits on a change (``hang``)."""

    __slots__ = ("_changed", "_rng", "_seed", "current")

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._changed: asyncio.Event | None = None
        self.current = _NONE

    def for_model(self, model: str) -> Faults | None:
        """The faults that apply to a request for ``model``, or ``None`` when there are none."""
        faults = self.current
        if faults is _NONE or not faults.applies_to(model):
            return None
        return faults

    def set(self, faults: Faults) -> None:
        """Put ``faults`` in force (``Faults()`` clears them) and wake everyone waiting on a change."""
        # Keep the shared "no faults" instance so the per-request check is an identity test.
        self.current = _NONE if faults == _NONE else faults
        self._rng.seed(self._seed)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``; certain rates use no dice, so they do not shift later rolls."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        return self._rng.random() < rate

    async def wait_changed(self) -> None:
        """Return at the next :meth:`set`."""
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()
