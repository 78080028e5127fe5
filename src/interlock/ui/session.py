"""Dashboard sessions: a signed, expiring token in a cookie, and the CSRF token derived from it.

The cookie never holds the API key. It holds the key's *id*, an expiry and a random nonce, signed
with HMAC-SHA256. The signing secret is its own random secret, made once and kept in the store
(:class:`interlock.store.SessionRepository`), so every worker and every instance sharing the database
accepts the same sessions; it is not derived from the master key, so a leaked cookie or signing
secret says nothing about the key. Each request re-checks the key itself (revoked or expired keys
end their sessions at once) and whether the session was signed out (the nonce is then on the
store's revocation list), so the token only says who signed in, not what they may do.

The CSRF token of a session is an HMAC of its nonce: operator forms carry it in a hidden field and
the server compares it in constant time. Together with the ``SameSite=Strict`` cookie and an
``Origin`` check, a page on another site cannot press a button on a signed-in operator's behalf.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = ["COOKIE_NAME", "SessionSigner", "SessionToken"]

COOKIE_NAME = "interlock_ui"
_VERSION = 1
_MAX_TOKEN_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class SessionToken:
    """What a valid cookie says: which key signed in, until when, and the session's nonce."""

    key_id: str
    expires_at: float
    nonce: str


class SessionSigner:
    """Issues and verifies session tokens and the CSRF tokens that go with them."""

    __slots__ = ("_clock", "_secret", "ttl_s")

    def __init__(
        self, secret: bytes, *, ttl_s: float = 8 * 3600, clock: Callable[[], float] = time.time
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, key_id: str) -> str:
        """A new token for ``key_id``, valid for ``ttl_s`` seconds."""
        payload = {
            "v": _VERSION,
            "k": key_id,
            "e": int(self._clock() + self.ttl_s),
            "n": secrets.token_hex(16),
        }
        body = _b64encode(orjson.dumps(payload))
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str | None) -> SessionToken | None:
        """The token's content when it is genuine and unexpired; ``None`` otherwise (never raises)."""
        if not token or len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            payload = orjson.loads(_b64decode(body))
            key_id, expires, nonce = payload["k"], float(payload["e"]), payload["n"]
        except (ValueError, KeyError, TypeError):
            return None
        if payload.get("v") != _VERSION or not isinstance(key_id, str) or not isinstance(nonce, str):
            return None
        if expires <= self._clock():
            return None
        return SessionToken(key_id=key_id, expires_at=expires, nonce=nonce)

    def csrf_token(self, session: SessionToken) -> str:
        """The CSRF token every state-changing form of this session must carry."""
        return self._sign("csrf:" + session.nonce)

    def check_csrf(self, session: SessionToken, submitted: str | None) -> bool:
        """Whether ``submitted`` is this session's CSRF token (constant-time comparison)."""
        return bool(submitted) and hmac.compare_digest(str(submitted), self.csrf_token(session))

    def _sign(self, text: str) -> str:
        return _b64encode(hmac.new(self._secret, text.encode(), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
