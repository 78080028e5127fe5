"""Request-log queries as people ask them: filters from strings, records as JSON-ready views."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from interlock.core.errors import InvalidRequest
from interlock.store import RequestRecord

__all__ = ["parse_since", "record_view", "request_filters"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``15m`` / ``1h`` / ``7d`` ago, or an ISO-8601 timestamp (UTC when it names no zone)."""
    match = _DURATION.match(value.strip())
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequest(
            f"'since' must be a duration like 15m, 1h, 7d or an ISO timestamp, got {value!r}.", param="since"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def request_filters(status: str | None, since: str | None) -> dict[str, Any]:
    """Keyword filters for ``RequestLogRepository.query`` from query-string values."""
    filters: dict[str, Any] = {}
    if status:
        if status in ("ok", "error"):
            filters["status_class"] = status
        elif status.isdigit():
            filters["status"] = int(status)
        else:
            raise InvalidRequest("'status' must be ok, error or an HTTP status code.", param="status")
    if since:
        filters["since"] = parse_since(since)
    return filters


def record_view(record: RequestRecord) -> dict[str, Any]:
    view = {f.name: getattr(record, f.name) for f in fields(record)}
    view["created_at"] = record.created_at.isoformat()
    view["attempts"] = [dict(a) for a in record.attempts]
    view["extra"] = dict(record.extra)
    return view
