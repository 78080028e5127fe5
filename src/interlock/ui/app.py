"""The dashboard's ASGI app: sign-in, the registered sections, their JSON data, actions and assets.

Every section is served the same way (see :mod:`interlock.ui.sections`)::

    GET  /ui/<path>                     the page (server-rendered; polls itself for live updates)
    GET  /ui/<path>  + x-interlock-fragment: 1   only the page's live region (what the poll fetches)
    GET  /ui/api/<path>                 the section's data as JSON
    GET  /ui/<path>/<item>              the detail page of one item, and /ui/api/<path>/<item>
    POST /ui/<path>/actions/<action>    an operator action (form: target, csrf)
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.core.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from interlock.store import StoreError
from interlock.ui.auth import (
    NOTICE_COOKIE,
    Authenticator,
    check_origin,
    decode_notice,
    encode_notice,
    read_form,
    safe_next,
)
from interlock.ui.format import FILTERS
from interlock.ui.gateway import Gateway
from interlock.ui.pages import BUILTIN_SECTIONS
from interlock.ui.sections import Section, SectionContext, SectionRegistry, Viewer
from interlock.ui.session import SessionSigner, SessionToken

__all__ = ["FRAGMENT_HEADER", "SecurityHeaders", "create_ui_app", "default_registry"]

log = logging.getLogger("interlock.ui")

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
FRAGMENT_HEADER = "x-interlock-fragment"

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def default_registry() -> SectionRegistry:
    """A registry holding the built-in sections; add your own before calling :func:`create_ui_app`."""
    return SectionRegistry(BUILTIN_SECTIONS)


def create_ui_app(
    runtime: Gateway, registry: SectionRegistry | None = None, *, signer: SessionSigner | None = None
) -> Starlette:
    """The dashboard for ``runtime``, to be mounted (at ``/ui``) in the gateway's app."""
    dashboard = _Dashboard(runtime, registry or default_registry(), Authenticator(runtime, signer))
    return dashboard.app()


class _Dashboard:
    def __init__(self, runtime: Gateway, registry: SectionRegistry, auth: Authenticator) -> None:
        self.runtime = runtime
        self.registry = registry
        self.auth = auth
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(("html",)),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(FILTERS)
        self.env.globals["asset_version"] = _asset_version()

    def app(self) -> Starlette:
        routes = [
            Route("/", self.index, methods=["GET"]),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
            Route("/api/{section}", self.api, methods=["GET"]),
            Route("/api/{section}/{item:path}", self.api, methods=["GET"]),
            Route("/{section}", self.page, methods=["GET"]),
            Route("/{section}/actions/{action}", self.action, methods=["POST"]),
            Route("/{section}/{item:path}", self.page, methods=["GET"]),
        ]
        return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])

    # -- sign-in ---------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return self._to_login(request)
        sections = self.registry.visible_to(session[0])
        return _redirect(_base(request) + "/" + (sections[0].path if sections else "login"))

    async def login(self, request: Request) -> Response:
        base = _base(request)
        if request.method == "GET":
            if await self._session(request) is not None:
                return _redirect(safe_next(base, request.query_params.get("next")))
            return self._render_login(request, request.query_params.get("next", ""), None)
        form: dict[str, str] = {}
        try:
            check_origin(request)
            form = await read_form(request)
            principal = await self.auth.sign_in(form.get("key", ""))
        except AuthenticationFailed:
            message = "That key is unknown, revoked or expired."
            return self._render_login(request, form.get("next", ""), message, 401)
        except GatewayError as err:
            return self._render_login(request, form.get("next", ""), err.message, err.status)
        response = _redirect(safe_next(base, form.get("next")))
        self.auth.set_cookie(request, response, principal)
        log.info("dashboard sign-in by key %s", principal.key_id)
        return response

    async def logout(self, request: Request) -> Response:
        try:
            form = await read_form(request)
            session = await self._session(request)
            self.auth.check_post(request, form, session[1] if session else None)
            if session is not None:
                await self.auth.sign_out(session[1])
        except GatewayError as err:
            return self._error(request, None, err.status, err.message)
        response = _redirect(_base(request) + "/login")
        self.auth.clear_cookie(request, response)
        return response

    def _render_login(
        self, request: Request, next_url: str, error: str | None, status: int = 200
    ) -> Response:
        body = self.env.get_template("login.html").render(
            base=_base(request), next=next_url, error=error, sections=[], viewer=None
        )
        return _html(body, status)

    # -- sections --------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        fragment = request.headers.get(FRAGMENT_HEADER) == "1"
        session = await self._session(request)
        if session is None:
            return _html("signed out", 401) if fragment else self._to_login(request)
        viewer, _ = session
        item = request.path_params.get("item")
        try:
            section = self._section(request, viewer, detail=item is not None)
            ctx = self._context(request, viewer)
            if item is None:
                data: Mapping[str, Any] | None = await section.data(ctx)
                template = section.template
            else:
                assert section.detail is not None and section.detail_template is not None
                data = await section.detail(ctx, item)
                template = section.detail_template
                if data is None:
                    raise NotFound(f"No {section.title.lower()} item '{item}' that you may see.")
        except (GatewayError, StoreError) as exc:
            err = _as_gateway_error(exc)
            return self._error(request, viewer, err.status, err.message, fragment=fragment)
        context = self._template_context(request, viewer, section, data, item)
        if fragment:
            return _html(self.env.get_template(template).render(context))
        response = _html(self.env.get_template("page.html").render(context, template=template))
        if context["notice"]:
            response.delete_cookie(NOTICE_COOKIE, path=_base(request) or "/")
        return response

    async def api(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return _json({"error": {"message": "Sign in first.", "type": "authentication_error"}}, 401)
        viewer, _ = session
        item = request.path_params.get("item")
        try:
            section = self._section(request, viewer, detail=item is not None)
            ctx = self._context(request, viewer)
            if item is None:
                data = await section.data(ctx)
            else:
                assert section.detail is not None
                found = await section.detail(ctx, item)
                if found is None:
                    raise NotFound(f"No item '{item}' that you may see.")
                data = found
        except (GatewayError, StoreError) as exc:
            err = _as_gateway_error(exc)
            return _json({"error": {"message": err.message, "type": err.type}}, err.status)
        return _json(data)

    async def action(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return self._error(request, None, 401, "Sign in first.")
        viewer, token = session
        try:
            section = self._section(request, viewer)
            name = request.path_params["action"]
            act = section.actions.get(name)
            if act is None:
                raise NotFound(f"No action '{name}' on {section.title}.")
            if not viewer.has_role(section.action_role):
                raise PermissionDenied("Operator actions need the master key.")
            form = await read_form(request)
            self.auth.check_post(request, form, token)
            target = form.get("target", "").strip()
            if not target:
                raise InvalidRequest("Say which target the action is for.", param="target")
            message = await act(self._context(request, viewer), target)
        except (GatewayError, StoreError) as exc:
            err = _as_gateway_error(exc)
            return self._error(request, viewer, err.status, err.message)
        back = request.headers.get("referer", "")
        base = _base(request)
        response = _redirect(safe_next(base, _path_of(back)) if back else f"{base}/{section.path}")
        response.set_cookie(
            NOTICE_COOKIE,
            encode_notice(message),
            max_age=60,
            path=base or "/",
            httponly=True,
            samesite="strict",
        )
        return response

    # -- helpers ---------------------------------------------------------------------------------

    async def _session(self, request: Request) -> tuple[Viewer, SessionToken] | None:
        try:
            return await self.auth.session(request)
        except StoreError:
            log.warning("dashboard session check failed: the store is unavailable")
            return None

    def _section(self, request: Request, viewer: Viewer, detail: bool = False) -> Section:
        section = self.registry.get(request.path_params["section"])
        if section is None or (detail and section.detail is None):
            raise NotFound(f"No dashboard page '{request.url.path}'.")
        if not viewer.has_role(section.required_role):
            raise PermissionDenied(f"{section.title} is for operators: sign in with the master key.")
        return section

    def _context(self, request: Request, viewer: Viewer) -> SectionContext:
        return SectionContext(
            runtime=self.runtime, viewer=viewer, params=dict(request.query_params), now=datetime.now(UTC)
        )

    def _template_context(
        self, request: Request, viewer: Viewer, section: Section, data: Any, item: str | None
    ) -> dict[str, Any]:
        return {
            "base": _base(request),
            "viewer": viewer,
            "sections": self.registry.visible_to(viewer),
            "section": section,
            "data": data,
            "item": item,
            "notice": decode_notice(request.cookies.get(NOTICE_COOKIE)),
            "generated_at": datetime.now(UTC),
            "query": str(request.url.query),
        }

    def _error(
        self, request: Request, viewer: Viewer | None, status: int, message: str, *, fragment: bool = False
    ) -> Response:
        sections = self.registry.visible_to(viewer) if viewer else []
        template = "error_fragment.html" if fragment else "error.html"
        body = self.env.get_template(template).render(
            base=_base(request), viewer=viewer, sections=sections, status=status, message=message
        )
        return _html(body, status)

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _redirect(f"{_base(request)}/login?next={quote(target, safe='')}")


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log.warning("dashboard query failed: %s", exc)
    return GatewayError("The store is unavailable; the page will retry shortly.", status=503)


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


def _html(body: str, status: int = 200) -> Response:
    return HTMLResponse(
        body, status_code=status, headers={"cache-control": "no-store", "vary": FRAGMENT_HEADER}
    )


def _json(body: Any, status: int = 200) -> Response:
    content = orjson.dumps(body, default=_json_default)
    return Response(
        content, status_code=status, media_type="application/json", headers={"cache-control": "no-store"}
    )


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(str(path.stat().st_mtime_ns).encode())
    return digest.hexdigest()[:10]


class SecurityHeaders:
    """Adds the dashboard's security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
