"""The one place where errors become HTTP responses, in the caller's API dialect.

No traceback, secret or config value ever reaches a client: a ``GatewayError`` carries a message
written for the caller, and anything else becomes a generic 500 whose details go to the log only.

Errors met at the upstream boundary may quote what an upstream said or name where it runs (a
connect error's host and port, a relayed error body that echoes a credential). Master and admin
callers see them in full; everyone else sees :func:`for_caller`'s generic form: the model, the
deployments tried, the error kind and status, and the request id to quote.
"""

from __future__ import annotations

import copy
import logging

import orjson

from interlock.core.context import Front, Principal, RequestContext
from interlock.core.errors import GatewayError, RateLimited, UpstreamError, UpstreamRejected
from interlock.providers.anthropic_inbound_reply import anthropic_error_body, anthropic_error_type

__all__ = ["error_body", "error_headers", "for_caller", "internal_error", "sees_upstream_detail"]

_SHOWN_DEPLOYMENTS = 3
_SHOWN_MODEL_CHARS = 80

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


def sees_upstream_detail(principal: Principal | None) -> bool:
    """Whether this caller may read upstream error details: the master key and admin-role keys."""
    return principal is not None and (principal.is_master or "admin" in principal.roles)


def for_caller(err: GatewayError, ctx: RequestContext) -> GatewayError:
    """``err`` as the caller of ``ctx`` may see it; status, type, code and Retry-After unchanged."""
    if sees_upstream_detail(ctx.principal) or not _from_upstream(err, ctx):
        return err
    message = _generic_message(err, ctx)
    shown = copy.copy(err)
    shown.message = message
    shown.args = (message,)
    return shown


def _from_upstream(err: GatewayError, ctx: RequestContext) -> bool:
    # once an attempt was made, the router's summaries (503/429) quote the upstreams' errors too
    return isinstance(err, UpstreamError | UpstreamRejected) or bool(ctx.attempts)


def _generic_message(err: GatewayError, ctx: RequestContext) -> str:
    model = ctx.model if len(ctx.model) <= _SHOWN_MODEL_CHARS else ctx.model[:_SHOWN_MODEL_CHARS] + "…"
    tried = list(dict.fromkeys(a.deployment for a in ctx.attempts))
    if not tried and ctx.deployment is not None:
        tried = [ctx.deployment.id]
    where = ""
    if tried:
        more = len(tried) - _SHOWN_DEPLOYMENTS
        listed = ", ".join(tried[:_SHOWN_DEPLOYMENTS]) + (f" and {more} more" if more > 0 else "")
        where = f" (tried {listed})"
    if isinstance(err, RateLimited) or err.status == 429:
        what = "is rate limited upstream"
    elif 400 <= err.status < 500:
        what = "was refused by the upstream as invalid"
    else:
        what = "failed upstream"
    return (
        f"The request for model '{model}' {what}{where}: {err.kind}, status {err.status}. "
        f"Quote request id {ctx.request_id} when reporting it."
    )
