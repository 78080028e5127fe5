"""Bounded storage for the request log: retention, and optional redacted bodies."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from interlock.core.context import RequestContext
from interlock.store import RequestLogRepository, RequestRecord, StoreError
from interlock.telemetry.redact import redact

__all__ = ["keep_retention", "with_bodies"]

log = logging.getLogger(__name__)


async def keep_retention(requests: RequestLogRepository, days: int, every_s: float = 3600.0) -> None:
    """Delete records older than ``days``, now and then every ``every_s`` seconds."""
    while True:
        try:
            deleted = await requests.delete_older_than(datetime.now(UTC) - timedelta(days=days))
            if deleted:
                log.info("request log retention: deleted %d records older than %d days", deleted, days)
        except StoreError:
            log.warning("request log retention skipped: the store is unavailable")
        await asyncio.sleep(every_s)


def with_bodies(record: RequestRecord, ctx: RequestContext) -> RequestRecord:
    """``record`` with the redacted request body, and the answer when it was not streamed, in ``extra``."""
    extra = dict(record.extra)
    extra["request_body"] = redact(ctx.body)
    if ctx.reply_body is not None:
        extra["response_body"] = redact(ctx.reply_body)
    return dataclasses.replace(record, extra=extra)
