"""``POST /v1/embeddings``: deterministic unit vectors that keep a little of the text's meaning.

A vector is built by feature hashing: every (lower-cased) token adds ±1 to a few dimensions chosen by
CRC32 of the token, and the sum is normalised. The same text always gives the same vector, and texts
that share words point in similar directions, so a semantic cache tested against the simulator sees
near-duplicates as near and unrelated texts as far.
"""

from __future__ import annotations

import base64
import sys
import zlib
from array import array
from math import sqrt

import orjson

from interlock.sim.engine import pause
from interlock.sim.exchange import Exchange
from interlock.sim.faults import Faults
from interlock.sim.inference import InferenceRoute
from interlock.sim.requests import EmbeddingsRequest, check_context, parse_embeddings
from interlock.sim.responses import embeddings_list
from interlock.sim.tokens import tokenize

__all__ = ["EmbeddingsRoute", "embed"]

# Dimensions each token touches: more spreads a token's weight, fewer keeps vectors sparser.
_TOUCHES = 4


def embed(text: str, dimensions: int) -> array[float]:
    """The unit-norm float32 vector of ``text``."""
    weights = [0.0] * dimensions
    tokens = tokenize(text.lower()) or [text]
    for token in tokens:
        seed = zlib.crc32(token.encode())
        for touch in range(_TOUCHES):
            seed = zlib.crc32(b"%d" % touch, seed)
            weights[seed % dimensions] += 1.0 if seed & 0x8000_0000 else -1.0
    norm = sqrt(sum(w * w for w in weights))
    if norm == 0:
        # Every touch cancelled out (rare for tiny texts): fall back to one axis, still unit length.
        weights[zlib.crc32(text.encode()) % dimensions] = norm = 1.0
    return array("f", [w / norm for w in weights])


def _base64(vector: array[float]) -> str:
    if sys.byteorder != "little":
        # OpenAI's base64 embeddings are little-endian float32.
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode()


class EmbeddingsRoute(InferenceRoute[EmbeddingsRequest]):
    """The embeddings endpoint of the simulator."""

    def parse(self, body: bytes) -> EmbeddingsRequest:
        """Validate the body; each input must fit the context window."""
        request = parse_embeddings(body)
        window = self.engine.config.context_window
        for count in request.token_counts:
            check_context(count, None, window)
        return request

    def describe(self, request: EmbeddingsRequest) -> tuple[str, bool]:
        """The request's model; embeddings never stream."""
        return request.model, False

    async def answer(self, exchange: Exchange, request: EmbeddingsRequest, faults: Faults | None) -> None:
        """Wait out the prefill of every input, then send the vectors."""
        engine = self.engine
        tokens = sum(request.token_counts)
        await pause(engine.prefill_seconds(tokens) * (faults.slowdown if faults is not None else 1.0))
        dimensions = request.dimensions or engine.config.embedding_dim
        vectors = [embed(text, dimensions) for text in request.inputs]
        data = [_base64(v) for v in vectors] if request.base64 else [v.tolist() for v in vectors]
        body = orjson.dumps(embeddings_list(request.model, data, tokens))
        engine.stats.prompt_tokens += tokens
        if faults is not None and faults.cut_after_tokens is not None:
            engine.stats.responses_cut += 1
            body = body[: len(body) // 2]
        else:
            engine.stats.completed += 1
        await exchange.respond(200, body)
