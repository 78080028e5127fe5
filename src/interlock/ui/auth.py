"""Signing in and out of the dashboard, and finding out who a request comes from.

Sign-in takes an API key in a form, verifies it with the gateway's key cache, and answers with a
session cookie (see :mod:`interlock.ui.session`); the key itself is never stored anywhere. Every
later request re-reads the key's record, so revoking or expiring a key ends its dashboard sessions
at once. Signing out puts the session on the store's revocation list, so the old cookie, replayed,
is refused by every process. State-changing requests must come from the dashboard's own origin and
carry the session's CSRF token. The cookie is ``Secure`` whenever the request came over https (as
told by a trusted proxy's ``X-Forwarded-Proto``, see :mod:`interlock.server.proxies`).
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from interlock.core.context import MASTER, Principal
from interlock.core.errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from interlock.store import StoreError
from interlock.ui.gateway import Gateway
from interlock.ui.sections import Viewer
from interlock.ui.session import COOKIE_NAME, SessionSigner, SessionToken

__all__ = [
    "NOTICE_COOKIE",
    "Authenticator",
    "check_origin",
    "decode_notice",
    "encode_notice",
    "read_form",
    "safe_next",
]

log = logging.getLogger("interlock.ui")

NOTICE_COOKIE = "interlock_ui_notice"
_MAX_FORM_BYTES = 16 * 1024


class Authenticator:
    """Sessions for one runtime: sign in, sign out, and the viewer behind a request."""

    __slots__ = ("_runtime", "_signer")

    def __init__(self, runtime: Gateway, signer: SessionSigner | None = None) -> None:
        """Without ``signer``, the store's shared signing secret is loaded at first use."""
        self._runtime = runtime
        self._signer = signer

    @property
    def signer(self) -> SessionSigner:
        """The session signer; available once :meth:`load_signer` (or a session check) ran."""
        if self._signer is None:
            raise RuntimeError("the session signer is not loaded yet")
        return self._signer

    async def load_signer(self) -> SessionSigner:
        """The signer with the secret every process shares (read from the store, made once there)."""
        if self._signer is None:
            store = self._runtime.store
            if store is None:
                raise ServiceUnavailable("The dashboard is starting; retry in a moment.")
            self._signer = SessionSigner(await store.sessions.signing_secret())
        return self._signer

    async def sign_in(self, api_key: str) -> Principal:
        """The principal holding ``api_key``; raises the gateway's 401 or 503 error otherwise."""
        principal = await self._runtime.keys.authenticate(api_key.strip() or None)
        try:
            await self.load_signer()
        except StoreError as exc:
            raise ServiceUnavailable("Cannot sign in now: the store is unavailable.") from exc
        return principal

    async def sign_out(self, token: SessionToken) -> None:
        """Revoke the session server-side, so its cookie is refused even if replayed."""
        store = self._runtime.store
        try:
            if store is None:
                raise ServiceUnavailable("The dashboard is starting; retry in a moment.")
            await store.sessions.revoke(token.nonce, datetime.fromtimestamp(token.expires_at, UTC))
        except StoreError as exc:
            log.warning("dashboard sign-out not recorded: the store is unavailable")
            raise ServiceUnavailable("Cannot sign out now: the store is unavailable; retry.") from exc
        log.info("dashboard sign-out by key %s", token.key_id)

    async def session(self, request: Request) -> tuple[Viewer, SessionToken] | None:
        """The signed-in viewer and their session, or ``None`` when nobody (valid) is signed in.

        Raises :class:`StoreError` when the store cannot say whether the session is still valid.
        """
        cookie = request.cookies.get(COOKIE_NAME)
        store = self._runtime.store
        if not cookie or store is None:
            return None
        signer = await self.load_signer()
        token = signer.verify(cookie)
        if token is None or await store.sessions.is_revoked(token.nonce):
            return None
        principal = await self._principal(token.key_id)
        if principal is None:
            return None
        return Viewer(principal=principal, csrf_token=signer.csrf_token(token)), token

    async def _principal(self, key_id: str) -> Principal | None:
        if key_id == MASTER.key_id:
            return MASTER if self._runtime.settings.master_key_hash() is not None else None
        return await self._runtime.keys.principal_of(key_id)

    def set_cookie(self, request: Request, response: Response, principal: Principal) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.signer.issue(principal.key_id),
            max_age=int(self.signer.ttl_s),
            path=_cookie_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            COOKIE_NAME,
            path=_cookie_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def check_post(self, request: Request, form: dict[str, str], token: SessionToken | None) -> None:
        """Refuse a state-changing request from another origin, or without this session's CSRF token."""
        check_origin(request)
        if token is not None and not self.signer.check_csrf(token, form.get("csrf")):
            raise PermissionDenied(
                "The form has expired or did not come from this dashboard; reload and retry."
            )


def check_origin(request: Request) -> None:
    """Browsers send ``Origin`` with every form POST; it must name this host."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or an old one; SameSite=Strict and the CSRF token still hold
    if origin == "null" or urlsplit(origin).netloc != request.headers.get("host", ""):
        raise PermissionDenied("Cross-origin requests are not accepted.")


async def read_form(request: Request) -> dict[str, str]:
    """A small URL-encoded form body as a dict (first value of each field)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("Send the form as application/x-www-form-urlencoded.", status=415)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise InvalidRequest("The form is too large.", status=413)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("The form could not be read.") from exc
    return {name: values[0] for name, values in fields.items()}


def safe_next(base: str, target: str | None) -> str:
    """Where to go after signing in: a path inside the dashboard, never another site."""
    default = base + "/"
    if not target or not target.startswith(base + "/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def encode_notice(message: str) -> str:
    return base64.urlsafe_b64encode(message.encode()[:500]).decode()


def decode_notice(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.urlsafe_b64decode(value.encode()).decode("utf-8", errors="replace")
    except ValueError:
        return None


def _cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path") or "/") or "/"
