"""The life of an inference request, shared by the chat and embeddings routes.

::

    arrive ─ auth ─ read + validate body ─┬─ instant engine, no faults, free slot ─► answer now
                                          └─ otherwise, watched for client disconnect:
                                               latency ─ error / reset / garbage faults
                                               ─ queue for a slot ─ hang fault ─ answer (timed)

The instant branch exists for benchmarks of the gateway: with every delay at 0 it creates no tasks
and no timers, so the simulator costs as little as it can per request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from starlette.types import Receive, Scope, Send

from interlock.sim.engine import Engine, pause
from interlock.sim.exchange import Exchange
from interlock.sim.faults import Faults
from interlock.sim.responses import ApiError

__all__ = ["InferenceRoute", "authorized"]

R = TypeVar("R")

_GARBAGE: dict[str, tuple[bytes, bytes]] = {
    "json": (
        b"application/json",
        b'{"id": "chatcmpl-garbage", "object": "chat.completion", "choices": [{"index": 0, "message": {"ro',
    ),
    "content_type": (
        b"text/html; charset=utf-8",
        b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n",
    ),
    "sse": (
        b"text/event-stream; charset=utf-8",
        b'data {"choices": [\nevent: ???\n: comment without end\x7f\ndata: {"id": "chatcmpl-garbage", '
        b'"choices": [{"delta": \nretry: soon\n\n',
    ),
}
_GARBAGE_JSON_STREAM = (
    b'data: {"id": "chatcmpl-garbage", "choices": [{"delta": {"content": "x"\n\ndata: [DONE]\n\n'
)


def authorized(scope: Scope, expected: bytes | None) -> bool:
    """Whether the request carries ``Authorization: <expected>`` (always true when ``expected`` is None)."""
    if expected is None:
        return True
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bool(value == expected)
    return False


class InferenceRoute(ABC, Generic[R]):
    """An ASGI endpoint that runs the common lifecycle and leaves parsing and answering to subclasses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        key = engine.config.api_key
        self._auth = b"Bearer " + key.encode() if key else None

    @abstractmethod
    def parse(self, body: bytes) -> R:
        """Validate the body (raising :class:`ApiError`) into a request."""

    @abstractmethod
    def describe(self, request: R) -> tuple[str, bool]:
        """The request's model name and whether it streams."""

    @abstractmethod
    async def answer(self, exchange: Exchange, request: R, faults: Faults | None) -> None:
        """Prefill, decode and send the answer; the caller holds a slot."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        engine = self.engine
        stats = engine.stats
        stats.enter()
        exchange = Exchange(scope, receive, send)
        try:
            if not authorized(scope, self._auth):
                stats.invalid += 1
                raise ApiError(401, "Incorrect API key provided.")
            if engine.closed:
                raise ApiError(503, "The server is shutting down.", code="service_unavailable")
            body = await exchange.read_body()
            try:
                request = self.parse(body)
            except ApiError:
                stats.invalid += 1
                raise
            await self._handle(exchange, request)
        except ApiError as error:
            await exchange.fail(error)
        finally:
            stats.in_flight -= 1

    async def _handle(self, exchange: Exchange, request: R) -> None:
        engine = self.engine
        model, stream = self.describe(request)
        faults = engine.faults.for_model(model)
        if faults is None and engine.config.instant and engine.try_acquire():
            try:
                await self.answer(exchange, request, None)
            finally:
                engine.release()
            return
        outcome = await exchange.watch(self._in_time(exchange, request, model, stream, faults), engine)
        if outcome == "disconnected":
            engine.stats.cancelled += 1

    async def _in_time(
        self, exchange: Exchange, request: R, model: str, stream: bool, faults: Faults | None
    ) -> None:
        engine = self.engine
        if faults is not None and await self._inject(exchange, faults, stream):
            return
        await engine.acquire()
        try:
            await self._wait_while_hung(model)
            await self.answer(exchange, request, faults)
        finally:
            engine.release()

    async def _inject(self, exchange: Exchange, faults: Faults, stream: bool) -> bool:
        """Apply the faults that replace the answer; True when one did."""
        stats = self.engine.stats
        dice = self.engine.faults
        await pause(faults.latency_ms / 1000)
        if dice.roll(faults.error_rate):
            stats.errors_injected += 1
            status = faults.error_status
            raise ApiError(
                status,
                "Rate limit reached for requests. Please try again later."
                if status == 429
                else f"The server had an error while processing your request (simulated {status}).",
                retry_after_s=faults.retry_after_s if status in (429, 503) else None,
            )
        if dice.roll(faults.reset_rate):
            stats.resets_injected += 1
            await exchange.drop(reset=True)
            return True
        if faults.garbage is not None:
            stats.garbage_injected += 1
            content_type, body = _GARBAGE[faults.garbage]
            if faults.garbage == "json" and stream:
                content_type, body = _GARBAGE["sse"][0], _GARBAGE_JSON_STREAM
            await exchange.respond(200, body, content_type)
            return True
        return False

    async def _wait_while_hung(self, model: str) -> None:
        faults = self.engine.faults
        counted = False
        while (current := faults.for_model(model)) is not None and current.hang:
            if not counted:
                self.engine.stats.hangs += 1
                counted = True
            await faults.wait_changed()
