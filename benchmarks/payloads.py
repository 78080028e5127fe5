"""Representative OpenAI-shaped bodies for the component benchmarks, built once."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "CHAT_REPLY",
    "CHAT_REPLY_OBJ",
    "CHAT_REQUEST",
    "CHAT_REQUEST_OBJ",
    "STREAM_BODY",
    "STREAM_CHUNK",
    "STREAM_CHUNK_OBJ",
    "STREAM_EVENTS",
]

_WORDS = [
    "check",
    "the",
    "replica",
    "lag",
    "first",
    "then",
    "compare",
    "read",
    "throughput",
    "on",
    "the",
    "old",
    "and",
    "new",
    "instance",
    "types",
    "and",
    "look",
    "at",
    "the",
    "object",
    "store",
    "latency",
    "for",
    "the",
    "parquet",
    "uploads",
    "before",
    "you",
    "touch",
    "the",
    "job",
]

CHAT_REQUEST_OBJ: dict[str, Any] = {
    "model": "chat",
    "messages": [
        {
            "role": "system",
            "content": "You are a concise assistant for an operations team. Answer in plain English, cite "
            "the runbook section when you use one, and say so when you are not sure.",
        },
        {
            "role": "user",
            "content": "Our nightly batch job that exports the billing tables to the warehouse failed twice "
            "this week with a timeout after about forty minutes. The job reads from the replica, writes "
            "parquet files to object storage and then triggers the warehouse load. Nothing changed in the "
            "job itself, but the replica was moved to a new instance type on Monday. What should we check "
            "first, in which order, and which metrics would tell us which part is slow? Keep it short.",
        },
    ],
    "max_tokens": 256,
    "temperature": 0.7,
    "stream": False,
}
CHAT_REQUEST = orjson.dumps(CHAT_REQUEST_OBJ)

CHAT_REPLY_OBJ: dict[str, Any] = {
    "id": "chatcmpl-4f1c2a9b7e3d",
    "object": "chat.completion",
    "created": 1_790_000_000,
    "model": "sim-small",
    "system_fingerprint": "fp_bench",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": " ".join(_WORDS * 3), "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 164,
        "completion_tokens": 96,
        "total_tokens": 260,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}
CHAT_REPLY = orjson.dumps(CHAT_REPLY_OBJ)

STREAM_EVENTS = 50


def _chunk(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-4f1c2a9b7e3d",
        "object": "chat.completion.chunk",
        "created": 1_790_000_000,
        "model": "sim-small",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}],
    }


STREAM_CHUNK_OBJ = _chunk(" replica")
STREAM_CHUNK = orjson.dumps(STREAM_CHUNK_OBJ)
# STREAM_EVENTS events in all: STREAM_EVENTS - 1 token chunks, then [DONE].
STREAM_BODY = (
    b"".join(
        b"data: " + orjson.dumps(_chunk(" " + _WORDS[i % len(_WORDS)])) + b"\n\n"
        for i in range(STREAM_EVENTS - 1)
    )
    + b"data: [DONE]\n\n"
)
