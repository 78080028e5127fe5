"""Assemble the ASGI application: /v1 (OpenAI and Anthropic front doors), /admin, health probes.

Every route refuses what it can from the headers before reading a body: the model routes and
/admin check the caller's key first, and every route has a body size limit
(``server.body_limits``). The connection-level limits (slow headers and bodies, header floods,
connection count) are :mod:`interlock.server.edge`'s; this app hands them to it through the
lifespan state.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from interlock.config.loader import config_path_from_env, load_settings
from interlock.config.schema import Settings
from interlock.core.errors import AuthenticationFailed, GatewayError, InvalidRequest, NotFound
from interlock.server.admin import create_admin_app
from interlock.server.anthropic_front import AnthropicMessagesFront
from interlock.server.asgi import request_id_for
from interlock.server.edge import EDGE_STATE_KEY, EdgeLimits
from interlock.server.errors import error_body, internal_error
from interlock.server.exchange import Exchange
from interlock.server.guards import bearer_matches, serve_limited
from interlock.server.models_api import ModelsEndpoint
from interlock.server.openai_front import OpenAIChatFront, OpenAIEmbeddingsFront
from interlock.server.proxies import transport_middleware
from interlock.server.runtime import Runtime
from interlock.ui import mount_ui

__all__ = ["GatewayApp", "create_app", "create_app_from_env", "tune_gc"]


class GatewayApp(Starlette):
    """Starlette, with the model routes dispatched before its middleware stack and router.

    The exchanges answer every error themselves (and apply the model routes' body limit), so they
    need nothing Starlette adds; skipping it saves tens of microseconds on every request.
    Everything else goes through Starlette, under ``other_limit`` — except /admin, whose guard
    applies the admin limit once the caller is known.
    """

    def __init__(self, hot: dict[str, Exchange], other_limit: int, **options: Any) -> None:
        super().__init__(**options)
        self.hot = hot
        self.other_limit = other_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        path = scope["path"]
        if scope["method"] == "POST":
            exchange = self.hot.get(path)
            if exchange is not None:
                await exchange(scope, receive, send)
                return
        if path == "/admin" or path.startswith("/admin/"):
            await super().__call__(scope, receive, send)
            return
        await serve_limited(super().__call__, scope, receive, send, self.other_limit)


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The gateway as one ASGI app. The runtime starts and stops with the app's lifespan."""
    rt = runtime or Runtime.build(settings)
    limits = settings.server.body_limits
    edge: Mapping[str, Any] = {EDGE_STATE_KEY: EdgeLimits.from_settings(settings.server)}
    metrics_token = settings.telemetry.metrics_token

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        ok, checks = await rt.ready()
        body = orjson.dumps({"status": "ready" if ok else "not ready", "checks": checks})
        return Response(body, status_code=200 if ok else 503, media_type="application/json")

    async def metrics(request: Request) -> Response:
        if metrics_token is not None and not bearer_matches(request.scope, metrics_token.get_secret_value()):
            err = AuthenticationFailed("/metrics needs 'Authorization: Bearer <telemetry.metrics_token>'.")
            return _error_response(request_id_for(request.scope), err)
        body = generate_latest(rt.telemetry.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        await rt.start()
        try:
            yield edge  # the server's edge protocol reads its limits from here
        finally:
            await rt.stop()

    models = ModelsEndpoint(rt.snapshot, rt.keys)
    hot = {
        "/v1/chat/completions": Exchange(OpenAIChatFront(), rt.chain, rt.keys, rt.snapshot, limits.model),
        "/v1/embeddings": Exchange(OpenAIEmbeddingsFront(), rt.chain, rt.keys, rt.snapshot, limits.model),
        "/v1/messages": Exchange(AnthropicMessagesFront(), rt.chain, rt.keys, rt.snapshot, limits.model),
    }
    routes = [
        *(Route(path, exchange, methods=["POST"]) for path, exchange in hot.items()),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/admin", app=create_admin_app(rt)),
        Mount("/ui", app=mount_ui(rt)),
    ]
    app = GatewayApp(
        hot,
        limits.other,
        routes=routes,
        middleware=transport_middleware(settings.server),
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.runtime = rt
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: GatewayError = NotFound(f"No route {request.method} {request.url.path}.")
    elif exc.status_code == 405:
        err = InvalidRequest(f"Method {request.method} is not allowed on {request.url.path}.", status=405)
    else:
        err = GatewayError(str(exc.detail), status=exc.status_code)
    return _error_response(request_id_for(request.scope), err)


def _error_response(request_id: str, err: GatewayError) -> Response:
    headers = {"x-request-id": request_id}
    return Response(error_body(err), status_code=err.status, media_type="application/json", headers=headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = request_id_for(request.scope)
    return _error_response(request_id, internal_error(exc, request_id))


def tune_gc() -> None:
    """Garbage-collection settings for a serving process.

    A request allocates many short-lived objects; with the default gen-0 threshold (700) a
    collection runs every few requests and costs a measurable share of the CPU. Objects alive at
    start-up (modules, config) are frozen out of collection, and gen 0 is collected less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app_from_env() -> Starlette:
    """Factory for multi-worker servers: each worker reads the config named by INTERLOCK_CONFIG."""
    tune_gc()
    path = config_path_from_env()
    settings = load_settings(path) if path else Settings()
    return create_app(settings)
