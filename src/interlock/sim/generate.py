"""What the simulated model answers: deterministic choices planned before the first token is sent.

Each choice is a list of one-token pieces plus a finish reason (and, for a tool call, the call). The
whole answer is decided up front from (model, prompt, seed, choice index), so streaming and
non-streaming requests agree token for token and the timing code only has to pace the pieces out.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from interlock.sim.config import SimConfig
from interlock.sim.requests import ChatRequest
from interlock.sim.responses import ToolCallPlan
from interlock.sim.schema_fill import fill_schema
from interlock.sim.tokens import split_pieces, stable_key, word_pieces

__all__ = ["ChoicePlan", "apply_stop", "plan_choices"]

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# How much of a tool's result an answer quotes back.
_QUOTE_TOKENS = 12


@dataclass(frozen=True, slots=True)
class ChoicePlan:
    """One planned choice: its pieces (text, or a tool call's arguments) and how it ends."""

    pieces: tuple[str, ...]
    finish_reason: str
    tool_call: ToolCallPlan | None = None

    @property
    def text(self) -> str:
        """The pieces joined: the content, or the tool call's arguments."""
        return "".join(self.pieces)


def apply_stop(pieces: list[str], stops: tuple[str, ...]) -> tuple[list[str], bool]:
    """Cut ``pieces`` before the first stop sequence; returns the pieces and whether one was found."""
    if not stops:
        return pieces, False
    text = "".join(pieces)
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if cut < 0:
        return pieces, False
    kept: list[str] = []
    length = 0
    for piece in pieces:
        if length + len(piece) >= cut:
            if cut > length:
                kept.append(piece[: cut - length])
            break
        kept.append(piece)
        length += len(piece)
    return kept, True


def _call_id(key: int) -> str:
    # A 64-bit LCG; its high bits are well mixed, its low bits are not, hence the shift.
    chars = []
    state = key
    for _ in range(24):
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFF_FFFF_FFFF_FFFF
        chars.append(_ID_ALPHABET[(state >> 33) % len(_ID_ALPHABET)])
    return "call_" + "".join(chars)


def _natural_length(key: int, config: SimConfig) -> int:
    low, high = config.output_tokens_min, config.output_tokens_max
    # Bits of the key other than those that pick the words, so length and wording vary independently.
    return low + (key >> 24) % (high - low + 1)


def _prose(key: int, count: int) -> list[str]:
    pieces = word_pieces(key, count - 1) if count > 1 else []
    pieces.append(".")
    return pieces


def _text_pieces(request: ChatRequest, key: int, config: SimConfig) -> list[str]:
    if request.response_format == "json_schema" and request.schema is not None:
        return split_pieces(orjson.dumps(fill_schema(request.schema, key)).decode())
    if request.response_format == "json_object":
        answer = "".join(word_pieces(key, min(_natural_length(key, config), 24))).strip()
        return split_pieces(orjson.dumps({"answer": answer, "id": key % 10_000}).decode())
    natural = _natural_length(key, config)
    if request.tool_result is None:
        return _prose(key, natural)
    quote = "".join(split_pieces(request.tool_result.strip())[:_QUOTE_TOKENS]).strip()
    pieces = split_pieces(f"The tool returned: {quote}.")
    return pieces + [" " + p.strip() if i == 0 else p for i, p in enumerate(_prose(key, natural))]


def _plan_one(request: ChatRequest, key: int, config: SimConfig) -> ChoicePlan:
    call: ToolCallPlan | None = None
    if request.tool is not None:
        arguments = orjson.dumps(fill_schema(request.tool.parameters, key)).decode()
        call = ToolCallPlan(_call_id(key), request.tool.name, arguments)
        pieces = split_pieces(arguments)
        finish = "tool_calls"
    else:
        pieces = _text_pieces(request, key, config)
        finish = "stop"
    if len(pieces) > request.max_tokens:
        pieces, finish = pieces[: request.max_tokens], "length"
    if call is None:
        pieces, stopped = apply_stop(pieces, request.stop)
        finish = "stop" if stopped else finish
    elif finish == "length":
        call = ToolCallPlan(call.id, call.name, "".join(pieces))
    return ChoicePlan(tuple(pieces), finish, call)


def plan_choices(request: ChatRequest, config: SimConfig) -> list[ChoicePlan]:
    """The ``n`` choices the model answers ``request`` with, the same every time it is asked."""
    base = stable_key(request.model, request.prompt, "" if request.seed is None else request.seed)
    return [_plan_one(request, base if i == 0 else stable_key(base, i), config) for i in range(request.n)]
