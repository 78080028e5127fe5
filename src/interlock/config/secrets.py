"""Checks for the secrets in settings: is a master key strong enough, and URLs shown without passwords.

The master key administers everything, so a guessable one is refused at start-up. The check cannot
know how a key was made; it estimates the entropy of what it sees and refuses keys that are short
or visibly patterned (repeats, runs like ``abcd`` or ``1234``, a chunk said twice). A key from
``secrets.token_urlsafe(32)`` passes with a wide margin; ``password1234password1234password``
does not.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MIN_MASTER_KEY_BITS",
    "MIN_MASTER_KEY_CHARS",
    "estimate_bits",
    "hash_secret",
    "is_sha256_hex",
    "mask_url_password",
    "master_key_problem",
]

MIN_MASTER_KEY_CHARS = 32
MIN_MASTER_KEY_BITS = 80
"""A random 32-character hex key (128 bits) estimates at 87 to 130 bits (115 typically); a
patterned key of the same length far lower (``password1234password1234password``: 44)."""

_MAX_KEY_CHARS = 256
_REPEAT = 4  # a 4-character chunk seen before carries (almost) no new information
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SUGGESTION = "python -c 'import secrets; print(\"sk-il-master-\" + secrets.token_urlsafe(32))'"


def estimate_bits(key: str) -> float:
    """An estimate of the entropy of ``key`` in bits (an upper bound for patterned keys).

    The Shannon entropy of its characters, counted only over characters that a simple model could
    not predict: the third of a run (``aaa``, ``abc``, ``321``), or the end of a 4-character chunk
    that already occurred earlier in the key.
    """
    if not key:
        return 0.0
    counts = Counter(key)
    per_char = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return per_char * sum(1 for i in range(len(key)) if not _predictable(key, i))


def master_key_problem(key: str) -> str | None:
    """Why ``key`` is not acceptable as a master key, or ``None``. Never quotes the key."""
    if len(key) < MIN_MASTER_KEY_CHARS:
        return (
            f"is too short ({len(key)} characters): use at least {MIN_MASTER_KEY_CHARS} random "
            f"characters, e.g. from {_SUGGESTION}"
        )
    if len(key) > _MAX_KEY_CHARS:
        return f"is too long (at most {_MAX_KEY_CHARS} characters)"
    if any(c.isspace() or not c.isprintable() for c in key):
        return "must not contain spaces or control characters"
    if estimate_bits(key) < MIN_MASTER_KEY_BITS:
        return f"is too easy to guess (repeated or sequential characters): generate one with {_SUGGESTION}"
    return None


def hash_secret(plaintext: str) -> str:
    """The SHA-256 hex digest under which keys, the master key included, are compared."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """Whether ``value`` looks like a SHA-256 hex digest (64 lowercase hex digits)."""
    return _SHA256_HEX.fullmatch(value) is not None


def mask_url_password(url: str) -> str:
    """``url`` with the password of its userinfo, if any, shown as ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _predictable(key: str, i: int) -> bool:
    if i >= 2:
        step = ord(key[i]) - ord(key[i - 1])
        if step in (-1, 0, 1) and step == ord(key[i - 1]) - ord(key[i - 2]):
            return True
    return i >= _REPEAT - 1 and key[i - _REPEAT + 1 : i + 1] in key[:i]
