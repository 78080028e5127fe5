"""Money as integers: micro-dollars (1 USD = 1,000,000 µ$).

Budgets add up many small amounts in several processes and in Redis (whose Lua numbers are
doubles), so amounts are never floats once they enter governance. Every integer below 2**53 is
exact in a double: that caps any one amount at about 9 billion USD, far above any sane budget (the
config refuses limits over :data:`MAX_USD`).

Conversions round *up*: a request that cost 0.4 µ$ counts as 1 µ$. A budget may then read a few
micro-dollars high after millions of requests, never low.
"""

from __future__ import annotations

import math

__all__ = ["MAX_USD", "MICROS_PER_USD", "micros_to_usd", "usd_to_micros"]

MICROS_PER_USD = 1_000_000
MAX_USD = 1_000_000_000.0
"""The largest amount the config accepts anywhere (10**15 µ$, well inside a double's exact range)."""


def usd_to_micros(usd: float) -> int:
    """``usd`` in micro-dollars, rounded up (a negative or NaN amount is an error)."""
    if not usd >= 0:  # also refuses NaN
        raise ValueError(f"an amount of money cannot be {usd!r}")
    # round to a thousandth of a micro-dollar first so that 0.1 USD (100000.00000000001 µ$ in
    # binary floating point) is 100000 µ$, not 100001
    return math.ceil(round(usd * MICROS_PER_USD, 3))


def micros_to_usd(micros: int) -> float:
    """``micros`` in US dollars (for display and events; never for arithmetic)."""
    return micros / MICROS_PER_USD
