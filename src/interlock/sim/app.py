"""The simulator's ASGI application: OpenAI routes, health, and the ``/sim`` control surface.

==========================  =============================================================
``POST /v1/chat/completions``  chat, streaming or not (:mod:`interlock.sim.chat`)
``POST /v1/embeddings``        embeddings (:mod:`interlock.sim.embeddings`)
``GET /v1/models[/{id}]``      configured models; any id answers
``GET /health``                ``{"status": "ok"}``
``GET|POST|DELETE /sim/faults`` show, set (replace) or clear injected faults
``GET /sim/stats``             counters; ``POST /sim/stats/reset`` zeroes them
``POST /sim/prefix-cache/reset`` empty the prefix cache
==========================  =============================================================
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from interlock.sim.chat import ChatRoute
from interlock.sim.config import SimConfig
from interlock.sim.embeddings import EmbeddingsRoute
from interlock.sim.engine import Engine
from interlock.sim.exchange import TRANSPORT_KEY
from interlock.sim.faults import FaultError, Faults, parse_faults
from interlock.sim.inference import authorized
from interlock.sim.requests import parse_json
from interlock.sim.responses import ApiError, error_body, model_card, models_list

__all__ = ["SimApp", "create_sim_app"]


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(error: ApiError) -> Response:
    headers = {k.decode(): v.decode() for k, v in error.headers()}
    return Response(error.body(), status_code=error.status, media_type="application/json", headers=headers)


class SimApp(Starlette):
    """A Starlette app with two additions for the inference routes.

    Dropping a connection with no response (the ``reset`` fault) needs the socket itself. Uvicorn
    does not put it in the ASGI scope, but its ``send`` is a method of an object that holds it; this
    outermost layer, before any middleware wraps ``send``, copies it into the scope.

    The inference routes answer every error themselves, so they are dispatched here, ahead of
    Starlette's middleware and router, whose cost would otherwise be paid by every request.
    """

    def __init__(self, engine: Engine, routes: list[Route], hot: dict[str, ASGIApp]) -> None:
        super().__init__(routes=routes)
        self.engine = engine
        self.router.default = self._not_found
        self._hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "http":
            scope[TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
            route = self._hot.get(scope["path"])
            if route is not None and scope["method"] == "POST":
                scope["app"] = self
                await route(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    @staticmethod
    async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
        message = f"Unknown request URL: {scope.get('method', 'GET')} {scope.get('path', '')}."
        body = error_body(message, type="invalid_request_error", code="unknown_url")
        response = Response(body, status_code=404, media_type="application/json")
        await response(scope, receive, send)


class _Control:
    """Handlers of the small JSON routes; none of them is on a benchmark's hot path."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.created = int(time.time())
        key = engine.config.api_key
        self._auth = b"Bearer " + key.encode() if key else None

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def models(self, request: Request) -> Response:
        if not authorized(request.scope, self._auth):
            return _error(ApiError(401, "Incorrect API key provided."))
        config = self.engine.config
        return _json(models_list(config.models, self.created, config.context_window))

    async def model(self, request: Request) -> Response:
        if not authorized(request.scope, self._auth):
            return _error(ApiError(401, "Incorrect API key provided."))
        model_id = request.path_params["model_id"]
        return _json(model_card(model_id, self.created, self.engine.config.context_window))

    async def faults(self, request: Request) -> Response:
        state = self.engine.faults
        if request.method == "DELETE":
            state.set(Faults())
        elif request.method == "POST":
            try:
                state.set(parse_faults(parse_json(await request.body())))
            except ApiError as error:
                return _error(error)
            except FaultError as error:
                return _error(ApiError(400, str(error), param="faults", code="invalid_fault"))
        return _json({"faults": state.current.to_json(), "active": state.current.any})

    async def stats(self, request: Request) -> Response:
        engine = self.engine
        data = engine.stats.to_json()
        data["name"] = engine.config.name
        data["prefix_cache_blocks"] = len(engine.cache)
        return _json(data)

    async def reset_stats(self, request: Request) -> Response:
        self.engine.stats.reset()
        return await self.stats(request)

    async def reset_prefix_cache(self, request: Request) -> Response:
        self.engine.cache.clear()
        return await self.stats(request)


def create_sim_app(config: SimConfig | None = None) -> SimApp:
    """Build the simulator's ASGI app (a :class:`~starlette.applications.Starlette`) for ``config``."""
    engine = Engine(config or SimConfig())
    control = _Control(engine)
    hot: dict[str, ASGIApp] = {
        "/v1/chat/completions": ChatRoute(engine),
        "/v1/embeddings": EmbeddingsRoute(engine),
    }
    routes = [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in hot.items()),
        Route("/v1/models", control.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", control.model, methods=["GET"]),
        Route("/health", control.health, methods=["GET"]),
        Route("/sim/faults", control.faults, methods=["GET", "POST", "DELETE"]),
        Route("/sim/stats", control.stats, methods=["GET"]),
        Route("/sim/stats/reset", control.reset_stats, methods=["POST"]),
        Route("/sim/prefix-cache/reset", control.reset_prefix_cache, methods=["POST"]),
    ]
    return SimApp(engine, routes, hot)
