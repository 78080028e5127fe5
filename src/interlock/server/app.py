"""Assemble the ASGI application: /v1 (OpenAI and Anthropic front doors), /admin, health probes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from interlock.config.loader import config_path_from_env, load_settings
from interlock.config.schema import Settings
from interlock.errors import GatewayError, InvalidRequest, NotFound
from interlock.server.admin import create_admin_app
from interlock.server.anthropic_front import AnthropicMessagesFront
from interlock.server.asgi import request_id_for
from interlock.server.errors import error_body, internal_error
from interlock.server.exchange import Exchange
from interlock.server.models_api import ModelsEndpoint
from interlock.server.openai_front import OpenAIChatFront, OpenAIEmbeddingsFront
from interlock.server.runtime import Runtime

__all__ = ["create_app", "create_app_from_env"]


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The gateway as one ASGI app. The runtime starts and stops with the app's lifespan."""
    rt = runtime or Runtime.build(settings)
    limit = settings.server.max_body_bytes

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        ok, checks = await rt.ready()
        body = orjson.dumps({"status": "ready" if ok else "not ready", "checks": checks})
        return Response(body, status_code=200 if ok else 503, media_type="application/json")

    async def metrics(request: Request) -> Response:
        body = generate_latest(rt.telemetry.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    models = ModelsEndpoint(rt.snapshot, rt.keys)
    routes = [
        Route("/v1/chat/completions", Exchange(OpenAIChatFront(), rt.chain, limit), methods=["POST"]),
        Route("/v1/embeddings", Exchange(OpenAIEmbeddingsFront(), rt.chain, limit), methods=["POST"]),
        Route("/v1/messages", Exchange(AnthropicMessagesFront(), rt.chain, limit), methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/admin", app=create_admin_app(rt)),
    ]
    app = Starlette(
        routes=routes,
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


def create_app_from_env() -> Starlette:
    """Factory for multi-worker servers: each worker reads the config named by INTERLOCK_CONFIG."""
    path = config_path_from_env()
    settings = load_settings(path) if path else Settings()
    return create_app(settings)
