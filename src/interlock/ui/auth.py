"""Signing in and out of the dashboard, and finding out who a request comes from.

Sign-in takes an API key in a form, verifies it with the gateway's key cache, and answers with a
session cookie (see :mod:`interlock.ui.session`); the key itself is never stored anywhere. Every
later request re-reads the key's record, so revoking or expiring a key ends its dashboard sessions
at once. State-changing requests must come from the dashboard's own origin and carry the session's
CSRF token.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from interlock.errors import InvalidRequest, PermissionDenied
from interlock.gateway.context import Principal
from interlock.server.runtime import Runtime
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

NOTICE_COOKIE = "interlock_ui_notice"
_MAX_FORM_BYTES = 16 * 1024
_MASTER = Principal(key_id="master", name="master", is_master=True, roles=("admin",))


class Authenticator:
    """Sessions for one runtime: sign in, sign out, and the viewer behind a request."""

    __slots__ = ("_runtime", "signer")

    def __init__(self, runtime: Runtime, signer: SessionSigner) -> None:
        self._runtime = runtime
        self.signer = signer

    async def sign_in(self, api_key: str) -> Principal:
        """The principal holding ``api_key``; raises the gateway's 401 or 503 error otherwise."""
        return await self._runtime.keys.authenticate(api_key.strip() or None)

    async def session(self, request: Request) -> tuple[Viewer, SessionToken] | None:
        """The signed-in viewer and their session, or ``None`` when nobody (valid) is signed in."""
        token = self.signer.verify(request.cookies.get(COOKIE_NAME))
        if token is None:
            return None
        principal = await self._principal(token.key_id)
        if principal is None:
            return None
        return Viewer(principal=principal, csrf_token=self.signer.csrf_token(token)), token

    async def _principal(self, key_id: str) -> Principal | None:
        if key_id == _MASTER.key_id:
            return _MASTER if self._runtime.settings.master_key is not None else None
        store = self._runtime.store
        if store is None:
            return None
        record = await store.keys.get(key_id)
        if record is None or not record.usable():
            return None
        return Principal(
            key_id=record.id,
            name=record.name,
            user_id=record.user_id,
            team_id=record.team_id,
            org_id=record.org_id,
            roles=tuple(record.roles),
        )

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
        response.delete_cookie(COOKIE_NAME, path=_cookie_path(request), httponly=True, samesite="strict")

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
