"""Errors raised by the store, and the one place where driver errors become them.

::

    StoreError              the database refused the operation (constraint, bad SQL, bad data)
    ├── StoreConflict       the change conflicts with what is stored (a name in use, a parent gone)
    └── StoreUnavailable    the database cannot be reached or is not usable right now

Messages name the database by its masked URL and never contain a password; the original driver
exception stays reachable as ``__cause__`` for logs on the server side only.
"""

from __future__ import annotations

import sqlalchemy.exc as sa_exc

__all__ = ["StoreConflict", "StoreError", "StoreUnavailable", "translate_error"]

# A driver message is informative in its first line; later lines carry SQL text and parameters.
_MAX_DETAIL = 300

# These mean the request itself was wrong; everything else means the database is not usable now.
_CALLER_ERRORS = (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError, sa_exc.NotSupportedError)


class StoreError(Exception):
    """The database refused an operation. The message is safe to log and contains no password."""


class StoreConflict(StoreError):
    """The change conflicts with stored data; the message says how, in words fit for the caller."""


class StoreUnavailable(StoreError):
    """The database is down, unreachable, locked too long or otherwise unusable."""


def translate_error(exc: BaseException, *, display_url: str, secret: str | None) -> StoreError:
    """Turn a driver or SQLAlchemy exception into a :class:`StoreError` with a scrubbed message.

    ``secret`` is the URL's password; any occurrence of it in the driver's text is masked, because
    some drivers echo connection parameters back in their errors.
    """
    if isinstance(exc, StoreError):
        return exc
    detail = _detail(exc)
    if secret:
        detail = detail.replace(secret, "***")
    unavailable = not _caller_error(exc)
    cls = StoreUnavailable if unavailable else StoreError
    verb = "unavailable" if unavailable else "error"
    return cls(f"database {display_url} {verb}: {type(_original(exc)).__name__}: {detail}")


def _original(exc: BaseException) -> BaseException:
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _detail(exc: BaseException) -> str:
    text = str(_original(exc)).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first[:_MAX_DETAIL]


def _caller_error(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(exc, _CALLER_ERRORS) and not exc.connection_invalidated
    # A StatementError that is not a DBAPIError failed before reaching the driver: a bad parameter.
    return isinstance(exc, sa_exc.StatementError)
