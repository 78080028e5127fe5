"""``GET /v1/models`` and ``GET /v1/models/{id}``: the public model names, OpenAI's list shape."""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core.errors import GatewayError, ModelNotFound
from interlock.governance.keys import KeyCache
from interlock.routing.snapshot import ModelRoute, SnapshotRef
from interlock.server.asgi import Receive, Scope, Send, api_key_from, request_id_for, send_bytes
from interlock.server.caller_input import clip
from interlock.server.errors import error_body, error_headers

__all__ = ["ModelsEndpoint"]


def _model_object(route: ModelRoute, created: int) -> dict[str, Any]:
    return {"id": route.name, "object": "model", "created": created, "owned_by": route.owned_by}


def _alias_object(alias: str, created: int) -> dict[str, Any]:
    """A tiered alias: a model name to callers, answered by one of three models."""
    return {"id": alias, "object": "model", "created": created, "owned_by": "interlock"}


class ModelsEndpoint:
    """Lists models, or describes one when the path carries an id."""

    def __init__(self, snapshot: SnapshotRef, keys: KeyCache) -> None:
        self._snapshot = snapshot
        self._keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_for(scope)
        headers = [(b"x-request-id", request_id.encode())]
        try:
            await self._keys.authenticate(api_key_from(scope))
            body = self._describe(scope.get("path_params", {}).get("model_id"))
        except GatewayError as err:
            await send_bytes(
                send, err.status, error_body(err), headers + error_headers(err), b"application/json"
            )
            return
        await send_bytes(send, 200, orjson.dumps(body), headers, b"application/json")

    def _describe(self, model_id: str | None) -> dict[str, Any]:
        snapshot = self._snapshot.current
        if model_id is None:
            data = [_model_object(route, snapshot.created) for route in snapshot.models.values()]
            data += [_alias_object(alias, snapshot.created) for alias in snapshot.tiers]
            return {"object": "list", "data": data}
        if model_id in snapshot.tiers:
            return _alias_object(model_id, snapshot.created)
        route = snapshot.models.get(model_id)
        if route is None:
            raise ModelNotFound(f"The model '{clip(model_id)}' does not exist.", param="model")
        return _model_object(route, snapshot.created)
