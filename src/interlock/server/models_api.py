"""``GET /v1/models`` and ``GET /v1/models/{id}``: the public model names, OpenAI's list shape.

A key limited to some models sees only those; asking for one it may not use is a 404, as for a
model that does not exist (so a list of allowed models does not reveal the others)."""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core.access import AllowList
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
            principal = await self._keys.authenticate(api_key_from(scope))
            body = self._describe(scope.get("path_params", {}).get("model_id"), principal.models)
        except GatewayError as err:
            await send_bytes(
                send, err.status, error_body(err), headers + error_headers(err), b"application/json"
            )
            return
        await send_bytes(send, 200, orjson.dumps(body), headers, b"application/json")

    def _describe(self, model_id: str | None, allowed: AllowList) -> dict[str, Any]:
        snapshot = self._snapshot.current
        if model_id is None:
            data = [
                _model_object(route, snapshot.created)
                for route in snapshot.models.values()
                if allowed.allows(route.name)
            ]
            data += [_alias_object(a, snapshot.created) for a in snapshot.tiers if allowed.allows(a)]
            return {"object": "list", "data": data}
        if model_id in snapshot.tiers and allowed.allows(model_id):
            return _alias_object(model_id, snapshot.created)
        route = snapshot.models.get(model_id)
        if route is None or not allowed.allows(route.name):
            raise ModelNotFound(f"The model '{clip(model_id)}' does not exist.", param="model")
        return _model_object(route, snapshot.created)
