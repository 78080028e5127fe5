"""The one exception tree of Interlock.

Every error that can reach a client is a :class:`GatewayError`. Each class carries the HTTP status,
the OpenAI error ``type`` and ``code``, and whether trying another deployment may help. Foreign
errors (aiohttp, SQLAlchemy, pydantic …) are converted once, where they enter, with
``raise X(...) from exc``; ``interlock.server.errors`` alone turns these into HTTP responses.

::

    GatewayError                       500 api_error
    ├── InvalidRequest                 400 invalid_request_error
    │   └── BodyTooLarge               413 invalid_request_error / request_too_large
    ├── AuthenticationFailed           401 authentication_error / invalid_api_key
    ├── PermissionDenied               403 permission_error
    │   ├── ModelNotAllowed            403 permission_error / model_not_allowed
    │   └── PoolNotAllowed             403 permission_error / pool_not_allowed
    ├── ModelNotFound                  404 invalid_request_error / model_not_found
    ├── NotFound                       404 not_found_error
    ├── Conflict                       409 invalid_request_error / conflict
    ├── RateLimited                    429 rate_limit_error           (retryable, Retry-After)
    │   └── BudgetExceeded             429 insufficient_quota / budget_exceeded
    ├── ServiceUnavailable             503 service_unavailable        (retryable)
    └── UpstreamError                  502 upstream_error             (retryable)
        ├── UpstreamConnectError       503 upstream_unavailable       (retryable)
        ├── UpstreamTimeout            504 upstream_timeout           (retryable)
        ├── UpstreamBadResponse        502 upstream_bad_response      (retryable)
        ├── UpstreamStreamBroken       502 upstream_stream_broken     (retryable before first byte)
        ├── UpstreamRateLimited        429 rate_limit_error           (retryable, Retry-After)
        └── UpstreamRejected           400 invalid_request_error      (the caller's request; not retried)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BodyTooLarge",
    "BudgetExceeded",
    "Conflict",
    "GatewayError",
    "InvalidRequest",
    "ModelNotAllowed",
    "ModelNotFound",
    "NotFound",
    "PermissionDenied",
    "PoolNotAllowed",
    "RateLimited",
    "ServiceUnavailable",
    "UpstreamBadResponse",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamStreamBroken",
    "UpstreamTimeout",
]


class GatewayError(Exception):
    """Base of every error a client may see. The message must be safe to show to the caller."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        if status is not None:
            self.status = status

    @property
    def kind(self) -> str:
        """A short, bounded label for metrics and the request log."""
        return self.code or self.type


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class BodyTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class ModelNotAllowed(PermissionDenied):
    """The caller's key may not use the model it asked for."""

    code = "model_not_allowed"


class PoolNotAllowed(PermissionDenied):
    """The caller's key may not be routed to the pool it asked for."""

    code = "pool_not_allowed"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(GatewayError):
    """The change conflicts with the current state (a name in use, a parent that is gone)."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class BudgetExceeded(RateLimited):
    """A budget the request draws on is spent (OpenAI's shape for exhausted credit)."""

    type = "insufficient_quota"
    code = "budget_exceeded"
    retryable = False


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"
    retryable = True


class UpstreamError(GatewayError):
    """The upstream failed; another deployment may succeed."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"
    retryable = True


class UpstreamConnectError(UpstreamError):
    status = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamBadResponse(UpstreamError):
    code = "upstream_bad_response"


class UpstreamStreamBroken(UpstreamError):
    code = "upstream_stream_broken"


class UpstreamRateLimited(UpstreamError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamRejected(GatewayError):
    """The upstream refused the caller's request as invalid (a 4xx that is the caller's to fix)."""

    status = 400
    type = "invalid_request_error"
    code = "upstream_rejected"
