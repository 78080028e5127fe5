"""Embeddings over loopback HTTP."""

from __future__ import annotations

import base64
import math
import struct

import httpx
import openai
import pytest

from interlock.sim import SimServerThread


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_float_vectors_are_unit_norm_and_deterministic(client: openai.OpenAI, sim: SimServerThread) -> None:
    first = client.embeddings.create(
        model="embed", input=["the signal is green", "x"], encoding_format="float"
    )
    assert first.model == "embed"
    assert [d.index for d in first.data] == [0, 1]
    for item in first.data:
        assert len(item.embedding) == sim.config.embedding_dim
        assert math.isclose(math.sqrt(sum(v * v for v in item.embedding)), 1.0, rel_tol=1e-5)
    again = client.embeddings.create(model="embed", input="the signal is green", encoding_format="float")
    assert again.data[0].embedding == first.data[0].embedding
    assert first.usage.prompt_tokens == first.usage.total_tokens > 0


def test_sdk_default_base64_decodes_to_the_float_vector(client: openai.OpenAI) -> None:
    floats = (
        client.embeddings.create(model="e", input="hello world", encoding_format="float").data[0].embedding
    )
    decoded = client.embeddings.create(model="e", input="hello world").data[0].embedding
    assert decoded == pytest.approx(floats, abs=1e-7)


def test_raw_base64_is_little_endian_float32(http: httpx.Client) -> None:
    body = {"model": "e", "input": "hello world", "encoding_format": "base64", "dimensions": 16}
    item = http.post("/v1/embeddings", json=body).json()["data"][0]
    raw = base64.b64decode(item["embedding"])
    values = struct.unpack("<16f", raw)
    assert math.isclose(sum(v * v for v in values), 1.0, rel_tol=1e-5)


def test_similar_texts_are_closer_than_unrelated_ones(client: openai.OpenAI) -> None:
    texts = [
        "reset the signal on track two",
        "please reset the signal on track two",
        "bananas are yellow fruit",
    ]
    a, b, c = (
        d.embedding for d in client.embeddings.create(model="e", input=texts, encoding_format="float").data
    )
    assert cosine(a, b) > cosine(a, c)


def test_token_array_inputs(http: httpx.Client) -> None:
    response = http.post("/v1/embeddings", json={"model": "e", "input": [[1, 2, 3], [4, 5]]})
    data = response.json()
    assert len(data["data"]) == 2 and data["usage"]["prompt_tokens"] == 5
    single = http.post("/v1/embeddings", json={"model": "e", "input": [7, 8, 9]}).json()
    assert len(single["data"]) == 1 and single["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "e"}, "input"),
        ({"model": "e", "input": ""}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": [1, "a"]}, "input"),
        ({"model": "e", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "x"}, "model"),
    ],
)
def test_bad_embedding_requests(http: httpx.Client, body: dict[str, object], param: str) -> None:
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
