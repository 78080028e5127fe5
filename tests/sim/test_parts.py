"""The simulator's parts on their own: tokenizer, text, prefix cache, schemas, faults, config, slots."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import interlock.sim
from interlock.sim import SimConfig
from interlock.sim.engine import Engine
from interlock.sim.faults import FaultError, Faults, FaultState, parse_faults
from interlock.sim.generate import apply_stop
from interlock.sim.prefix_cache import PrefixCache
from interlock.sim.schema_fill import fill_schema
from interlock.sim.tokens import _WORDS, count_tokens, split_pieces, tokenize, word_pieces


def test_public_api() -> None:
    assert set(interlock.sim.__all__) == {
        "Faults",
        "SimApp",
        "SimConfig",
        "SimControls",
        "SimProcess",
        "SimServerThread",
        "config_to_args",
        "create_sim_app",
        "serve",
    }
    for name in interlock.sim.__all__:
        assert getattr(interlock.sim, name).__doc__


@pytest.mark.parametrize(
    "text", ["Hello, world!", "  spaced   out  ", "", "naïve café ☕ 42", "a\nb\tc ", '{"k": [1, 2]}']
)
def test_pieces_join_back_and_count_like_tokens(text: str) -> None:
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert sum(count_tokens(p) for p in pieces) == count_tokens(text) == len(tokenize(text))


def test_tokens_are_about_four_characters() -> None:
    assert tokenize("interlocking") == ["inte", "rloc", "king"]
    assert count_tokens("Hi, you.") == 4


def test_answer_words_are_single_tokens() -> None:
    assert all(count_tokens(word) == 1 for word in _WORDS)
    pieces = word_pieces(12345, 300)
    assert len(pieces) == 300
    assert all(count_tokens(p) == 1 for p in pieces)
    assert pieces == word_pieces(12345, 300)
    assert pieces != word_pieces(54321, 300)
    assert pieces[0][0].isupper()


def test_word_pieces_wrap_around_the_stream() -> None:
    assert len(word_pieces(2**63, 70_000)) == 70_000


def test_apply_stop() -> None:
    pieces = ["Hello", " there", " big", " world"]
    assert apply_stop(pieces, ("big",)) == (["Hello", " there", " "], True)
    assert apply_stop(pieces, ("ere", "Hel")) == ([], True)
    assert apply_stop(pieces, ("nope",)) == (pieces, False)
    assert apply_stop(pieces, ()) == (pieces, False)


def test_prefix_cache_chains_blocks() -> None:
    cache = PrefixCache(block_size=2, capacity=100)
    assert cache.admit(["a", "b", "c", "d", "e"]) == 0
    assert cache.admit(["a", "b", "c", "d", "x"]) == 4
    # The same block after a different prefix is a different block.
    assert cache.admit(["z", "z", "c", "d"]) == 0
    # A fully cached prompt still leaves its last token to compute.
    assert cache.admit(["a", "b", "c", "d"]) == 3


def test_prefix_cache_evicts_least_recently_used() -> None:
    cache = PrefixCache(block_size=1, capacity=3)
    cache.admit(["a", "b", "c", "x"])  # blocks a, ab, abc — x makes the prompt longer than them
    cache.admit(["q", "x"])  # evicts "a", the oldest
    assert len(cache) == 3
    assert cache.admit(["a", "b", "x"]) == 0
    assert PrefixCache(block_size=4, capacity=0).admit(list("abcdefgh")) == 0


def test_schema_fill_covers_common_constructs() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "when": {"type": "string", "format": "date-time"},
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40},
            "choice": {"anyOf": [{"type": "null"}, {"type": "integer", "exclusiveMinimum": 5, "maximum": 6}]},
            "both": {
                "allOf": [{"properties": {"a": {"type": "boolean"}}}, {"properties": {"b": {"const": 1}}}]
            },
            "items": {"type": "array", "items": {"$ref": "#/definitions/item"}, "minItems": 2, "maxItems": 2},
        },
        "required": ["id", "extra"],
        "definitions": {"item": {"type": "number", "minimum": 1, "maximum": 2}},
    }
    value = fill_schema(schema, key=9)
    assert value == fill_schema(schema, key=9)
    assert len(value["id"]) == 36 and value["id"][14] == "4"
    assert value["when"].endswith("Z")
    assert len(value["short"]) <= 3 and len(value["long"]) >= 40
    assert value["choice"] == 6
    assert isinstance(value["both"]["a"], bool) and value["both"]["b"] == 1
    assert len(value["items"]) == 2 and all(1 <= v <= 2 for v in value["items"])
    assert isinstance(value["extra"], str)


def test_schema_fill_survives_odd_schemas() -> None:
    assert fill_schema({"type": "array", "minItems": "many"}, key=1) == {}
    recursive = {"type": "object", "properties": {"next": {"$ref": "#"}}}
    assert isinstance(fill_schema(recursive, key=1), dict)


def test_parse_faults() -> None:
    faults = parse_faults({"error_rate": 0.5, "error_status": 429, "only_models": ["a"], "garbage": "sse"})
    assert faults.error_rate == 0.5 and faults.error_status == 429 and faults.garbage == "sse"
    assert faults.applies_to("a") and not faults.applies_to("b")
    assert parse_faults({}) == Faults() and not parse_faults({}).any
    with pytest.raises(FaultError, match="error_rate"):
        parse_faults({"error_rate": True})
    with pytest.raises(FaultError, match="unknown"):
        parse_faults({"typo": 1})


def test_fault_dice_restart_when_faults_change() -> None:
    state = FaultState(seed=5)
    state.set(Faults(error_rate=0.5))
    first = [state.roll(0.5) for _ in range(20)]
    state.set(Faults(error_rate=0.5))
    assert [state.roll(0.5) for _ in range(20)] == first
    assert state.roll(1.0) and not state.roll(0.0)
    assert state.for_model("m") is not None
    state.set(Faults())
    assert state.for_model("m") is None


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 70000},
        {"models": ()},
        {"ttft_ms": -1},
        {"max_concurrency": 0},
        {"queue_full_status": 500},
        {"output_tokens_min": 10, "output_tokens_max": 5},
        {"embedding_dim": 0},
    ],
)
def test_config_rejects_nonsense(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid simulator config"):
        SimConfig(**changes)


def test_config_instant() -> None:
    assert SimConfig(ttft_ms=0, prefill_ms_per_token=0, tpot_ms=0).instant
    assert not SimConfig().instant


async def test_slots_are_granted_first_in_first_out() -> None:
    engine = Engine(SimConfig(max_concurrency=1))
    await engine.acquire()
    order: list[int] = []

    async def wait(i: int) -> None:
        await engine.acquire()
        order.append(i)

    waiters = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert engine.stats.queued == 3
    waiters[1].cancel()
    await asyncio.sleep(0)
    assert engine.stats.queued == 2
    for _ in range(3):
        engine.release()
        await asyncio.sleep(0)
    assert order == [0, 2]
    assert engine.try_acquire() is True
    assert engine.stats.peak_queued == 3


def test_decode_slows_with_batch() -> None:
    engine = Engine(SimConfig(tpot_ms=10, batch_penalty=0.5))
    engine.stats.decode(1)
    alone = engine.step_seconds()
    engine.stats.decode(2)
    assert engine.step_seconds() == pytest.approx(alone * 2)
    assert engine.prefill_seconds(1000) == pytest.approx((20 + 0.05 * 1000) / 1000)
