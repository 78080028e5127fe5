"""Model tiering: the classifier's verdicts, the rules on top, and a tiered alias through the gateway."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from interlock.config.loader import ConfigError, parse_settings
from interlock.config.schema import TierSpec
from interlock.governance.tiering import choose_tier, classify
from interlock.sim import SimServerThread
from tests.gateway_harness import MASTER_KEY, Gateway, running_gateway

SPEC = TierSpec(economy="small", standard="medium", premium="large")
CODE = (
    "Why does this fail? Explain why and debug it step by step:\n```python\ndef f(x):\n    return x[1]\n```"
)


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def test_a_short_plain_question_is_economy_and_sure_of_it() -> None:
    verdict = classify(user("What is the capital of France?"))
    assert verdict.tier == "economy" and verdict.confidence == 1.0
    assert verdict.reasons == ("short and plain",)


def test_code_with_reasoning_cues_is_premium() -> None:
    verdict = classify(user(CODE))
    assert verdict.tier == "premium"
    assert "code" in verdict.reasons
    assert any(r.startswith("reasoning cues: ") and "debug" in r for r in verdict.reasons)


def test_tools_and_structured_output_make_a_standard_request() -> None:
    body = user(
        "Look up the weather.",
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": {}}},
    )
    verdict = classify(body)
    assert verdict.tier == "standard" and verdict.reasons == ("tools", "structured output")


def test_prompt_length_counts_continuously_and_content_parts_are_read() -> None:
    parts = [{"type": "text", "text": "x" * 9000}, {"type": "image_url", "image_url": {"url": "data:"}}]
    verdict = classify({"messages": [{"role": "user", "content": parts}]})
    assert verdict.score == pytest.approx(9000 / 8000, abs=1e-3)
    assert verdict.tier == "standard" and verdict.reasons == ("prompt 9000 chars",)


def test_near_a_boundary_the_request_goes_one_tier_up() -> None:
    # 5,800 characters score 0.725: economy, but 0.025 from the boundary (confidence 0.55)
    body = user("y" * 5800)
    verdict = classify(body)
    assert verdict.tier == "economy" and verdict.confidence < SPEC.confidence
    choice = choose_tier("auto", SPEC, body, None)
    assert choice.tier == "standard" and choice.model == "medium"
    assert choice.reasons[-1].startswith("low confidence")


def test_budget_pressure_goes_one_tier_down_but_never_below_economy() -> None:
    premium = choose_tier("auto", SPEC, user(CODE), pressure=0.85)
    assert premium.tier == "standard" and premium.reasons[-1] == "budget 85% used: one tier down"
    assert choose_tier("auto", SPEC, user(CODE), pressure=0.5).tier == "premium"
    assert choose_tier("auto", SPEC, user("hi"), pressure=1.0).tier == "economy"


def test_hostile_bodies_are_classified_not_crashed_on() -> None:
    for body in (
        {},
        {"messages": "not a list"},
        {"messages": [None, 3, {"role": "user", "content": {"odd": True}}]},
        {"messages": [{"role": "user", "content": [None, {"text": 5}]}], "max_tokens": "many"},
    ):
        assert classify(body).tier == "economy"
    # the cue and code scans read a bounded prefix of the last message
    huge = classify(user("plan " + "a" * 5_000_000))
    assert huge.tier == "standard" and huge.reasons == ("prompt 5000005 chars", "reasoning cues: plan")


CONFIG = """
master_key: {master}
store: sqlite:///{tmp}/interlock.db
providers:
  sim: {{kind: openai, base_url: {url}}}
models:
  small: {{deployments: [{{provider: sim, model: sim-small, price: {{input: 0.1, output: 0.2}}}}]}}
  medium: {{deployments: [{{provider: sim, model: sim-medium, price: {{input: 1.0, output: 2.0}}}}]}}
  large: {{deployments: [{{provider: sim, model: sim-large, price: {{input: 5.0, output: 15.0}}}}]}}
tiers:
  auto: {{economy: small, standard: medium, premium: large}}
"""


@pytest.fixture
def tiered(sim: SimServerThread, tmp_path: Path) -> Any:
    with running_gateway(CONFIG.format(master=MASTER_KEY, tmp=tmp_path, url=sim.base_url)) as gw:
        yield gw


def _record(gateway: Gateway, request_id: str) -> dict[str, Any]:
    with gateway.admin() as admin:
        deadline = time.monotonic() + 10
        while (response := admin.get(f"/admin/requests/{request_id}")).status_code == 404:
            assert time.monotonic() < deadline, "the request was never recorded"
            time.sleep(0.05)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def test_a_tiered_alias_sends_each_request_to_its_tiers_model(tiered: Gateway) -> None:
    client = tiered.openai()
    cheap = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello"}], max_tokens=5
    )
    assert cheap.headers["x-interlock-tier"] == "economy; model=small; confidence=1.0"
    assert cheap.headers["x-interlock-deployment"].startswith("small/")
    hard = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": CODE}], max_tokens=5, stream=True
    )
    assert hard.headers["x-interlock-tier"].startswith("premium; model=large")
    chunks = list(hard.parse())
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    record = _record(tiered, hard.headers["x-request-id"])
    assert record["model"] == "large"
    tier = record["extra"]["tier"]
    assert tier["alias"] == "auto" and tier["tier"] == "premium" and "code" in tier["reasons"]
    listed = {m.id for m in client.models.list()}
    assert {"auto", "small", "medium", "large"} <= listed
    assert client.models.retrieve("auto").owned_by == "interlock"


def test_an_unknown_model_is_still_a_404_with_tiers_configured(tiered: Gateway) -> None:
    response = httpx.post(
        tiered.base_url + "/chat/completions",
        json=user("hi") | {"model": "autox"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    assert response.status_code == 404 and "x-interlock-tier" not in response.headers


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ("auto: {economy: small, standard: medium, premium: nope}", "tiers.auto.premium: 'nope'"),
        ("small: {economy: small, standard: medium, premium: large}", "tiers.small: the alias"),
        ("auto: {economy: small, standard: medium, premium: large, confidence: 2}", "confidence"),
        ("auto: {economy: small, standard: medium}", "premium"),
    ],
)
def test_bad_tier_config_names_the_field(tiers: str, message: str, tmp_path: Path) -> None:
    text = CONFIG.format(master=MASTER_KEY, tmp=tmp_path, url="http://127.0.0.1:9/v1")
    text = text.split("tiers:")[0] + "tiers:\n  " + tiers + "\n"
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("'", ".")):
        parse_settings(text, env={})


def test_a_key_limited_to_some_models_gets_the_nearest_tier_it_may_use(tiered: Gateway) -> None:
    with tiered.admin() as admin:
        made = admin.post("/admin/keys", json={"name": "no-premium", "models": ["auto", "small", "medium"]})
        made.raise_for_status()
        only_large = admin.post("/admin/keys", json={"name": "large-only", "models": ["auto", "large"]})
    client = tiered.openai(made.json()["key"])
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": CODE}], max_tokens=5
    )
    assert raw.headers["x-interlock-tier"].startswith("standard; model=medium")
    record = _record(tiered, raw.headers["x-request-id"])
    assert record["extra"]["tier"]["reasons"][-1] == "this key may not use 'large'"
    cheap = tiered.openai(only_large.json()["key"]).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    assert cheap.headers["x-interlock-tier"].startswith("premium; model=large")  # the only one it may use
