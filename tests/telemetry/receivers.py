"""Tiny real HTTP servers for telemetry tests: an OpenAI-compatible upstream that records the headers
it receives (and fails on demand), and a webhook receiver that records what it is sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from interlock.server.thread import ServerThread

UPSTREAM_MODEL_VERSION = "up-model-2025-01-01"


@dataclass
class Recorder:
    """What a server received; ``statuses`` scripts the status of the next answers (then 200)."""

    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, request: Request, body: Any) -> int:
        with self.lock:
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            self.bodies.append(body)
            return self.statuses.pop(0) if self.statuses else 200


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-rec",
        "object": "chat.completion",
        "model": UPSTREAM_MODEL_VERSION,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def _chunks() -> Iterator[bytes]:
    base = {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "model": UPSTREAM_MODEL_VERSION}
    for piece in ("hel", "lo"):
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield b"data: " + orjson.dumps(done) + b"\n\n"
    usage = {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
    yield b"data: " + orjson.dumps(usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


@contextmanager
def recording_upstream() -> Iterator[tuple[str, Recorder]]:
    """An OpenAI-compatible upstream at ``<url>/v1``: (base URL, recorder)."""
    recorder = Recorder()

    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        status = recorder.take(request, body)
        if status != 200:
            error = {"error": {"message": "scripted failure", "type": "server_error"}}
            return Response(orjson.dumps(error), status_code=status, media_type="application/json")
        if body.get("stream"):
            return StreamingResponse(_chunks(), media_type="text/event-stream")
        return Response(orjson.dumps(_completion(body["model"])), media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with ServerThread(app) as server:
        yield server.url + "/v1", recorder


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[tuple[str, Recorder]]:
    """A webhook endpoint at ``<url>/hook`` that answers ``status``: (URL, recorder)."""
    recorder = Recorder()

    async def hook(request: Request) -> Response:
        recorder.take(request, orjson.loads(await request.body()))
        return Response(b"ok", status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with ServerThread(app) as server:
        yield server.url + "/hook", recorder
