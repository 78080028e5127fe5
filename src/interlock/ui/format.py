"""How numbers, times and states read on the dashboard: the template filters, in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from interlock.core.context import CLIENT_CLOSED

__all__ = ["FILTERS", "OUTCOMES", "compliance_level", "state_level"]

_DASH = "–"


def number(value: Any, digits: int = 0) -> str:
    """``12,345`` or ``1.5`` (``digits`` decimals); a dash for nothing."""
    if value is None:
        return _DASH
    return f"{float(value):,.{digits}f}"


def compact(value: Any) -> str:
    """``950``, ``12.3k``, ``4.1M``: counts that must fit a narrow column."""
    if value is None:
        return _DASH
    amount = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(amount) >= limit:
            return f"{amount / limit:.1f}{suffix}"
    return f"{amount:,.0f}"


def ms(value: Any) -> str:
    """Milliseconds as people read them: ``0.8 ms``, ``42 ms``, ``1.25 s``."""
    if value is None:
        return _DASH
    amount = float(value)
    if amount == 0:
        return "0 ms"
    if amount >= 10_000:
        return f"{amount / 1000:,.1f} s"
    if amount >= 1_000:
        return f"{amount / 1000:.2f} s"
    if amount >= 10:
        return f"{amount:,.0f} ms"
    return f"{amount:.1f} ms"


def ms_fine(value: Any) -> str:
    """Milliseconds with two significant digits below 1 ms (``0.14 ms``, ``0.042 ms``): for the
    gateway's own time, which ``ms`` would round to ``0.0 ms``."""
    if value is None:
        return _DASH
    amount = float(value)
    if 0 < amount < 1:
        return f"{amount:.2g} ms"
    return ms(amount)


def duration(seconds: Any) -> str:
    """A span of time: ``45 s``, ``15 min``, ``2 h``."""
    if seconds is None:
        return _DASH
    amount = float(seconds)
    if amount < 120:
        return f"{amount:.0f} s"
    if amount < 7200:
        return f"{amount / 60:.0f} min"
    return f"{amount / 3600:.0f} h"


def usd(value: Any) -> str:
    """Dollars with as many decimals as small amounts need: ``$12.34``, ``$0.0042``."""
    if value is None:
        return _DASH
    amount = float(value)
    if amount == 0:
        return "$0.00"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    if abs(amount) >= 0.01:
        return f"${amount:.3f}"
    return f"${amount:.5f}"


def pct(value: Any, digits: int = 1) -> str:
    """A ratio (0..1) as a percentage."""
    if value is None:
        return _DASH
    return f"{float(value) * 100:.{digits}f} %"


def rate(value: Any) -> str:
    """Per-second rates: ``0.35/s``, ``12.4/s``, ``1,204/s``."""
    if value is None:
        return _DASH
    amount = float(value)
    if amount >= 100:
        return f"{amount:,.0f}/s"
    if amount >= 10:
        return f"{amount:.1f}/s"
    return f"{amount:.2f}/s"


def clock(value: Any) -> str:
    """``14:03:27`` for today (UTC), ``Nov 23 14:03`` otherwise."""
    moment = _as_datetime(value)
    if moment is None:
        return _DASH
    if moment.date() == datetime.now(UTC).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%b %d %H:%M")


def iso(value: Any) -> str:
    moment = _as_datetime(value)
    return moment.isoformat(timespec="milliseconds") if moment else ""


def compliance_level(value: float | None, target: float = 0.95) -> str:
    """``good`` at or above the target, ``warn`` within 5 points below it, ``bad`` under that."""
    if value is None:
        return "none"
    if value >= target:
        return "good"
    return "warn" if value >= target - 0.05 else "bad"


def state_level(state: str) -> str:
    """The colour family of a deployment or request state."""
    return {
        "closed": "good",
        "healthy": "good",
        "ok": "good",
        "half_open": "warn",
        "draining": "warn",
        "open": "bad",
        "unhealthy": "bad",
        "disabled": "muted",
    }.get(state, "muted")


OUTCOMES: dict[str, tuple[str, str]] = {
    "ok": ("ok", "good"),
    "client_error": ("caller's error", "muted"),
    "refused": ("refused", "warn"),
    "upstream_error": ("upstream error", "bad"),
    "gateway_error": ("gateway error", "bad"),
    "cancelled": ("client left", "muted"),
}
"""Outcome class → (what the dashboard calls it, its colour)."""


def outcome_label(outcome: Any) -> str:
    return OUTCOMES.get(str(outcome), (str(outcome), ""))[0]


def outcome_level(outcome: Any) -> str:
    return OUTCOMES.get(str(outcome), ("", "muted"))[1]


def status_level(status: Any) -> str:
    code = int(status or 0)
    if code < 400:
        return "good"
    return "warn" if code < 500 or code == CLIENT_CLOSED else "bad"


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


FILTERS: dict[str, Callable[..., str]] = {
    "number": number,
    "compact": compact,
    "ms": ms,
    "ms_fine": ms_fine,
    "duration": duration,
    "usd": usd,
    "pct": pct,
    "rate": rate,
    "clock": clock,
    "iso": iso,
    "compliance_level": compliance_level,
    "state_level": state_level,
    "status_level": status_level,
    "outcome_label": outcome_label,
    "outcome_level": outcome_level,
}
"""Every filter the templates use, registered on the Jinja environment by the app."""
