"""Streams that survive their upstream: a stream broken after its first token continues elsewhere.

Before the first byte, a failed attempt is simply retried. After it, the client already holds part
of the answer, and an error event would end the request. Instead, when the stream breaks with an
error that says nothing about the request (the upstream died, reset, hung or timed out), the text
streamed so far is sent to another deployment as the start of the assistant's answer, asking it to
go on from there, and its chunks continue the same stream: same id, no second role chunk,
``max_tokens`` reduced by what was already sent. Anthropic's Messages API continues a final
assistant message natively (prefill); OpenAI-compatible engines read it as the answer so far.

Only plain text answers of one choice resume; a stream that had started a tool call, asked for
``n > 1`` or already finished ends with the error event as before. A stream resumes at most
``max_resumes`` times, and each resume is a retry: it draws on the model's retry budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from interlock.core.context import Chunk, Chunks
from interlock.core.errors import GatewayError
from interlock.routing.retry import classify

__all__ = ["Restart", "continuation_body", "resumable"]

Restart = Callable[[str, int], Awaitable[AsyncIterator[Chunks] | None]]
"""Start the rest of the answer elsewhere, given the text so far and how many tokens it had: the
new stream, or None when there is nowhere (or no budget) to go."""

_IDENTITY = ("id", "created", "model", "system_fingerprint")


def continuation_body(body: dict[str, Any], partial: str, tokens_sent: int) -> dict[str, Any]:
    """The request that asks for the rest of an answer that began with ``partial``."""
    messages = list(body.get("messages") or [])
    if partial:
        messages.append({"role": "assistant", "content": partial})
    resumed = dict(body, messages=messages)
    for name in ("max_completion_tokens", "max_tokens"):
        limit = body.get(name)
        if isinstance(limit, int) and not isinstance(limit, bool):
            resumed[name] = max(1, limit - tokens_sent)
    return resumed


class _Transcript:
    """What the client has been sent of choice 0, and whether the stream can still resume."""

    __slots__ = ("identity", "parts", "resumable", "tokens")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.tokens = 0
        self.resumable = True
        self.identity: dict[str, Any] = {}

    def note(self, chunk: Chunk) -> None:
        if not self.identity:
            self.identity = {k: chunk[k] for k in _IDENTITY if k in chunk}
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                self.resumable = False
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if delta.get("tool_calls") or delta.get("function_call"):
                    self.resumable = False
                content = delta.get("content")
                if isinstance(content, str) and content:
                    self.parts.append(content)
                    self.tokens += 1
            if choice.get("finish_reason"):
                self.resumable = False

    def adopt(self, chunk: Chunk) -> Chunk | None:
        """A chunk of the continuation as part of the original stream; None to drop it (the
        continuation's own opening role chunk)."""
        choices = chunk.get("choices") or ()
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        delta = first.get("delta")
        opening = (
            isinstance(delta, dict)
            and bool(delta.get("role"))
            and not delta.get("content")
            and not delta.get("tool_calls")
            and not first.get("finish_reason")
        )
        return None if opening else {**chunk, **self.identity}


async def resumable(
    stream: AsyncIterator[Chunks], restart: Restart, max_resumes: int = 2
) -> AsyncIterator[Chunks]:
    """``stream``, continued by ``restart`` if it breaks mid-way (see the module docstring)."""
    transcript = _Transcript()
    current = stream
    resumes = 0
    try:
        while True:
            try:
                async for batch in current:
                    out = batch if resumes == 0 else [c for c in map(transcript.adopt, batch) if c]
                    for chunk in batch:
                        transcript.note(chunk)
                    if out:
                        yield out
                return
            except GatewayError as err:
                if not transcript.resumable or classify(err) != "retry":
                    raise
                await _aclose(current)
                following = None
                while following is None and resumes < max_resumes:
                    resumes += 1
                    following = await _try_restart(restart, transcript)
                if following is None:
                    raise
                current = following
    finally:
        await _aclose(current)


async def _try_restart(restart: Restart, transcript: _Transcript) -> AsyncIterator[Chunks] | None:
    try:
        return await restart("".join(transcript.parts), transcript.tokens)
    except GatewayError:
        return None  # that deployment failed too (the attempt is in the trace); maybe another


async def _aclose(chunks: AsyncIterator[Chunks]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
