"""``GET /admin/reports/summary``: the aggregates behind ``interlock report`` (``reports.read``).

Registered on the admin app by :func:`register_report_routes`; the numbers come from
:mod:`interlock.telemetry.report_data`, computed by the database with grouped queries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Depends, FastAPI
from starlette.responses import Response

from interlock.core.context import Principal
from interlock.core.errors import InvalidRequest, ServiceUnavailable
from interlock.server.runtime import Runtime
from interlock.telemetry.report_data import OutcomeRepository, build_report
from interlock.telemetry.request_log import parse_since
from interlock.telemetry.spend_report import SPEND_GROUPINGS, spend_report

__all__ = ["parse_bucket", "register_report_routes"]

_BUCKET = re.compile(r"^(\d+)\s*(h|d)$")
_MAX_BUCKETS = 400


def parse_bucket(value: str) -> int:
    """``1h``, ``6h``, ``1d`` … as seconds."""
    match = _BUCKET.match(value.strip())
    if not match or int(match.group(1)) < 1:
        raise InvalidRequest(
            f"'bucket' must be a number of hours or days like 1h or 1d, got {value!r}.", param="bucket"
        )
    return int(match.group(1)) * (3600 if match.group(2) == "h" else 86_400)


def register_report_routes(
    app: FastAPI, runtime: Runtime, caller: Callable[..., Coroutine[Any, Any, Principal]]
) -> None:
    """Add the report routes to the admin app, guarded by its permission dependency."""

    @app.get("/reports/summary", dependencies=[Depends(caller)])
    async def report_summary(since: str = "7d", until: str | None = None, bucket: str = "1d") -> Response:
        """Performance, SLO compliance, cost, fallbacks and top consumers over ``since`` .. ``until``
        (durations like ``7d`` or ISO timestamps; ``until`` defaults to now), in ``bucket`` steps."""
        store = runtime.store
        if store is None:
            raise ServiceUnavailable("The store is not open yet.")
        start = parse_since(since)
        end = parse_since(until) if until else datetime.now(UTC)
        bucket_s = parse_bucket(bucket)
        if end <= start:
            raise InvalidRequest("'until' must be later than 'since'.", param="until")
        if (end - start).total_seconds() / bucket_s > _MAX_BUCKETS:
            raise InvalidRequest(f"At most {_MAX_BUCKETS} buckets: use a wider 'bucket'.", param="bucket")
        slos = {name: route.spec.slo for name, route in runtime.snapshot.current.models.items()}
        # Store keeps its Database private; the outcome queries need it (see OutcomeRepository).
        outcomes = OutcomeRepository(store._db)
        report = await build_report(store, outcomes, slos, start, end, bucket_s)
        return Response(orjson.dumps(report), media_type="application/json")

    @app.get("/reports/spend", dependencies=[Depends(caller)])
    async def report_spend(by: str = "team", since: str = "7d", until: str | None = None) -> Response:
        """Spend by ``team``, ``key``, ``user``, ``model`` or ``pool`` over ``since`` .. ``until``
        (showback / chargeback), highest cost first, with the total."""
        store = runtime.store
        if store is None:
            raise ServiceUnavailable("The store is not open yet.")
        if by not in SPEND_GROUPINGS:
            raise InvalidRequest(f"'by' must be one of {', '.join(SPEND_GROUPINGS)}.", param="by")
        start = parse_since(since)
        end = parse_since(until) if until else None
        if end is not None and end <= start:
            raise InvalidRequest("'until' must be later than 'since'.", param="until")
        report = await spend_report(store, runtime.snapshot.current, by, start, end)
        return Response(orjson.dumps(report), media_type="application/json")
