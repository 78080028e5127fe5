"""The one place where errors become HTTP responses, in the caller's API dialect.

No traceback, secret or config value ever reaches a client: a ``GatewayError`` carries a message
written for the caller, and anything else becomes a generic 500 whose details go to the log only.
"""

from __future__ import annotations

import logging

import orjson

from interlock.errors import GatewayError
from interlock.gateway.context import Front
from interlock.providers.anthropic_inbound_reply import anthropic_error_body, anthropic_error_type

__all__ = ["error_body", "error_headers", "internal_error"]

log = logging.getLogger("interlock.server")


def error_body(err: GatewayError, front: Front = "openai") -> bytes:
    """The JSON error object the caller's SDK expects."""
    if front == "anthropic":
        return orjson.dumps(anthropic_error_body(err.status, anthropic_error_type(err), err.message))
    return orjson.dumps(
        {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}
    )


def error_headers(err: GatewayError) -> list[tuple[bytes, bytes]]:
    if err.retry_after is None:
        return []
    return [(b"retry-after", str(max(1, round(err.retry_after))).encode())]


def internal_error(exc: BaseException, request_id: str) -> GatewayError:
    """Log an unexpected exception with its traceback, and give the caller only a request id."""
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    return GatewayError(f"Internal error. Quote request id {request_id} when reporting it.")
