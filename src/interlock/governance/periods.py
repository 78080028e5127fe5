"""Budget periods, calendar-aligned in UTC: a day, an ISO week (Monday first), a month, or forever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = ["Period", "PeriodWindow", "period_window"]

Period = Literal["day", "week", "month", "total"]


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    """One period: its label (part of the storage key) and its bounds in epoch milliseconds."""

    label: str
    start_ms: int
    end_ms: int | None
    """None for ``total``, which never resets."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def period_window(period: Period, now_s: float) -> PeriodWindow:
    """The period of kind ``period`` that contains the instant ``now_s`` (epoch seconds)."""
    now = datetime.fromtimestamp(now_s, UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return PeriodWindow(day.strftime("%Y-%m-%d"), _ms(day), _ms(day + timedelta(days=1)))
    if period == "week":
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        return PeriodWindow(f"{year}-W{week:02d}", _ms(start), _ms(start + timedelta(days=7)))
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return PeriodWindow(start.strftime("%Y-%m"), _ms(start), _ms(end))
    return PeriodWindow("total", 0, None)
