"""Ids for reservations and leases: unique across processes, and cheap (a counter, not a syscall).

Each process draws 64 random bits once; each id is that prefix and a counter.
"""

from __future__ import annotations

import itertools
import secrets

__all__ = ["new_id"]

_PREFIX = secrets.token_hex(8) + "-"
_COUNTER = itertools.count(1)


def new_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):x}"
