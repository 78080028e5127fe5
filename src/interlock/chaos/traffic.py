"""Open-loop traffic for drills: chat completions at a fixed rate, whatever the answers do.

Request ``i`` is due at ``start + i / rps`` and its latency counts from then, not from when it was
actually sent, so a gateway that stalls is charged for the requests queued behind the stall (no
coordinated omission). Each request's outcome is kept: status, latency, the attempts the gateway made
(``x-interlock-attempts``), who answered, and — for streams — whether the stream ended with
``[DONE]`` or with an error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp
import orjson

__all__ = ["RequestRecord", "TrafficPlan", "count_attempts", "drive", "new_session"]


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    """What to send: where, how fast, for how long. Times are seconds on ``time.monotonic()``."""

    gateway: str
    key: str
    model: str
    rps: float
    start: float
    """When request 0 is due (monotonic clock)."""
    count: int
    """Requests in all: request ``i`` is due at ``start + i / rps``."""
    stream: bool | Literal["mixed"] = False
    """``mixed``: every other request streams."""
    max_tokens: int | Sequence[int] = 16
    """A sequence is used in rotation: short and long answers mixed."""
    timeout_s: float = 30.0

    def streams(self, index: int) -> bool:
        """Whether request ``index`` streams."""
        return index % 2 == 1 if self.stream == "mixed" else bool(self.stream)

    def tokens(self, index: int) -> int:
        """``max_tokens`` of request ``index``."""
        if isinstance(self.max_tokens, int):
            return self.max_tokens
        # offset by the stream rotation so every length is seen streamed and not
        return self.max_tokens[(index // 2) % len(self.max_tokens)]

    @property
    def duration_s(self) -> float:
        return self.count / self.rps


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request's outcome. ``start_s`` is its due time, relative to the drill's origin."""

    index: int
    start_s: float
    latency_s: float
    status: int
    """HTTP status; 0 when no response came (connection refused or reset, timeout)."""
    error: str | None
    """``None`` for a success; else ``http_<status>``, ``stream_error``, ``stream_truncated``,
    ``connect``, ``disconnected`` or ``timeout``."""
    attempts: int
    deployment: str | None = None
    ttft_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def fallback(self) -> bool:
        """A success that needed more than one attempt (a retry or a fallback)."""
        return self.ok and self.attempts > 1

    @property
    def end_s(self) -> float:
        return self.start_s + self.latency_s


def count_attempts(header: str | None) -> int:
    """Attempts listed in ``x-interlock-attempts`` (``dep=outcome:ms, dep=outcome:ms``)."""
    if not header:
        return 0
    return sum(1 for part in header.split(",") if part.strip())


def new_session(limit: int = 2048) -> aiohttp.ClientSession:
    """A client session for drills: many connections, no proxy from the environment."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit), trust_env=False
    )


async def drive(
    session: aiohttp.ClientSession,
    plan: TrafficPlan,
    origin: float,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> list[RequestRecord]:
    """Send ``plan.count`` requests on schedule; return every outcome, in order of due time.

    Returns once every request is answered or has timed out (``plan.timeout_s`` after it was due).
    """
    records: list[RequestRecord] = []
    tasks: list[asyncio.Task[None]] = []
    interval = 1.0 / plan.rps
    url = plan.gateway.rstrip("/") + "/v1/chat/completions"
    headers = {"Authorization": f"Bearer {plan.key}", "Content-Type": "application/json"}

    async def one(index: int, due: float) -> None:
        record = await _request(session, url, headers, plan, index, due, origin)
        records.append(record)
        if on_record is not None:
            on_record(record)

    for index in range(plan.count):
        due = plan.start + index * interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    records.sort(key=lambda r: r.index)
    return records


def _body(plan: TrafficPlan, index: int) -> bytes:
    body: dict[str, object] = {
        "model": plan.model,
        "messages": [{"role": "user", "content": f"chaos drill request {index}: say something short"}],
        "max_tokens": plan.tokens(index),
    }
    if plan.streams(index):
        body["stream"] = True
    return orjson.dumps(body)


async def _request(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    plan: TrafficPlan,
    index: int,
    due: float,
    origin: float,
) -> RequestRecord:
    status, error, attempts, deployment, ttft = 0, None, 0, None, None
    try:
        async with asyncio.timeout(max(0.001, due + plan.timeout_s - time.monotonic())):
            async with session.post(url, data=_body(plan, index), headers=headers) as response:
                status = response.status
                attempts = count_attempts(response.headers.get("x-interlock-attempts"))
                deployment = response.headers.get("x-interlock-deployment")
                if status != 200:
                    await response.read()
                    error = f"http_{status}"
                elif plan.streams(index):
                    error, first = await _read_stream(response)
                    ttft = None if first is None else first - due
                else:
                    error = _check_json(await response.read())
    except TimeoutError:
        error = "timeout"
    except aiohttp.ClientConnectorError:
        error = "connect"
    except (aiohttp.ClientError, OSError):
        error = "disconnected"
    done = time.monotonic()
    return RequestRecord(
        index=index,
        start_s=due - origin,
        latency_s=done - due,
        status=status,
        error=error,
        attempts=attempts,
        deployment=deployment,
        ttft_s=ttft,
    )


def _check_json(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "bad_body"
    return None if isinstance(data, dict) and data.get("choices") else "bad_body"


async def _read_stream(response: aiohttp.ClientResponse) -> tuple[str | None, float | None]:
    """Read an SSE stream to its end: ``(error, time of the first content chunk)``."""
    first: float | None = None
    async for raw in response.content:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return None, first
        if data[:12].replace(b" ", b"").startswith(b'{"error"'):
            return "stream_error", first
        if first is None and b'"content":"' in data.replace(b": ", b":"):
            first = time.monotonic()
    return "stream_truncated", first
