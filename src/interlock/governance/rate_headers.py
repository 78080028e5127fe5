"""The ``x-ratelimit-*`` response headers, named and formatted as OpenAI sends them.

``x-ratelimit-limit-requests``, ``-remaining-requests``, ``-reset-requests`` and the ``-tokens``
trio. Where several limits apply (key, team, model …), the headers describe the tightest one: the
bucket with the fewest units left. Reset times are durations such as ``1s``, ``6m0s``, ``120ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from interlock.governance.counters import BucketLine, BucketState

__all__ = ["RateHeaders", "format_duration"]


def format_duration(seconds: float) -> str:
    """``seconds`` as OpenAI writes reset times: ``120ms``, ``1s``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


@dataclass(frozen=True, slots=True)
class _Window:
    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class RateHeaders:
    requests: _Window | None = None
    tokens: _Window | None = None

    @classmethod
    def from_buckets(
        cls,
        buckets: Sequence[BucketLine],
        kinds: Sequence[str],
        states: Sequence[BucketState] | None,
    ) -> RateHeaders:
        """The tightest request and token bucket (``states`` None: not asked, reported as full)."""
        best: dict[str, _Window] = {}
        for index, (line, kind) in enumerate(zip(buckets, kinds, strict=True)):
            if kind not in ("requests", "tokens"):
                continue
            state = states[index] if states is not None else BucketState(line.limit, 0)
            window = _Window(line.limit, state.remaining, state.reset_ms / 1000)
            current = best.get(kind)
            if current is None or (window.remaining, -window.reset_s) < (current.remaining, -current.reset_s):
                best[kind] = window
        return cls(best.get("requests"), best.get("tokens"))

    def as_openai(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for kind, window in (("requests", self.requests), ("tokens", self.tokens)):
            if window is not None:
                headers[f"x-ratelimit-limit-{kind}"] = str(window.limit)
                headers[f"x-ratelimit-remaining-{kind}"] = str(window.remaining)
                headers[f"x-ratelimit-reset-{kind}"] = format_duration(window.reset_s)
        return headers
