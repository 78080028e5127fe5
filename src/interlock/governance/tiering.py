"""Model tiering: a tiered alias (``auto``) sends each request to its economy, standard or premium model.

A fast classifier reads the request — no model is called, it costs microseconds — and scores the
work it asks for:

==========================  ======================================================
signal                      score
==========================  ======================================================
prompt length               + characters / 8,000 (at most 1.5): continuous
function tools offered      + 1.0
structured output asked     + 0.5 (``response_format`` / ``text.format`` json_schema)
code in the last message    + 1.0 (fences, or several lines that read as code)
reasoning cues              + 0.5 each distinct cue ("step by step", "prove", …), at most 1.5
a long conversation         + 0.5 (more than 12 messages)
a long answer asked         + 0.5 (``max_tokens`` over 2,000)
==========================  ======================================================

A score under 0.75 is economy, from 2.25 premium, standard between. The confidence is 1 away from
those boundaries and falls to 0.5 on one; below the alias's ``confidence`` (0.6) the request goes
one tier up — a wrong guess downward costs quality, upward only money. Then budget pressure: when
the tightest budget the caller draws on is used beyond ``budget_pressure`` (80 %), the request goes
one tier down. Each step is a reason, kept with the choice in the request record and the
``x-interlock-tier`` response header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from interlock.config.schema import TierSpec

__all__ = ["TIERS", "Tier", "TierChoice", "Verdict", "choose_tier", "classify"]

Tier = Literal["economy", "standard", "premium"]
TIERS: tuple[Tier, ...] = ("economy", "standard", "premium")

_STANDARD_FROM = 0.75
_PREMIUM_FROM = 2.25
_LENGTH_UNIT = 8000.0
_LENGTH_MAX = 1.5
_SCANNED_CHARS = 20_000
"""Cues and code are looked for in the last user message's first 20,000 characters only."""
_CUES = re.compile(
    r"step[- ]by[- ]step|\bprove\b|\bproof\b|\bderive\b|\banaly[sz]e\b|\breason(?:ing)?\b|"
    r"\bexplain why\b|\btrade-?offs?\b|\bcompare\b|\bdebug\b|\boptimi[sz]e\b|\bplan\b|"
    r"\btheorem\b|\bcalculate\b|\barchitecture\b|\brefactor\b",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import|function |const |let |var |#include|public |"
    r"SELECT |fn |func |package |return\b|if \(|for \(|}\s*$)",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the classifier made of a request."""

    tier: Tier
    score: float
    confidence: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TierChoice:
    """The model a tiered alias sent one request to, and why."""

    alias: str
    tier: Tier
    model: str
    confidence: float
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "alias": self.alias,
            "tier": self.tier,
            "model": self.model,
            "confidence": round(self.confidence, 3),
            "reasons": list(self.reasons),
        }


def classify(body: Mapping[str, Any]) -> Verdict:
    """Score the work a chat request asks for (see the module docstring)."""
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []
    total, last_user = _texts(messages, body)
    score = min(_LENGTH_MAX, total / _LENGTH_UNIT)
    reasons = [f"prompt {total} chars"] if score >= 0.25 else []
    if body.get("tools"):
        score += 1.0
        reasons.append("tools")
    if _wants_schema(body):
        score += 0.5
        reasons.append("structured output")
    scanned = last_user[:_SCANNED_CHARS]
    if "```" in scanned or len(_CODE_LINE.findall(scanned)) >= 3:
        score += 1.0
        reasons.append("code")
    cues = sorted({m.group(0).lower() for m in _CUES.finditer(scanned)})
    if cues:
        score += min(1.5, 0.5 * len(cues))
        reasons.append("reasoning cues: " + ", ".join(cues[:3]))
    if len(messages) > 12:
        score += 0.5
        reasons.append(f"{len(messages)} messages")
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    if isinstance(max_tokens, int) and max_tokens > 2000:
        score += 0.5
        reasons.append(f"max_tokens {max_tokens}")
    tier: Tier = "economy" if score < _STANDARD_FROM else "premium" if score >= _PREMIUM_FROM else "standard"
    distance = min(abs(score - _STANDARD_FROM), abs(score - _PREMIUM_FROM))
    confidence = min(1.0, 0.5 + 2.0 * distance)
    return Verdict(tier, round(score, 3), confidence, tuple(reasons) or ("short and plain",))


def choose_tier(alias: str, spec: TierSpec, body: Mapping[str, Any], pressure: float | None) -> TierChoice:
    """The tier and model for one request to ``alias``; ``pressure`` is the share used of the
    tightest budget the caller draws on (None when no budget applies)."""
    verdict = classify(body)
    rank = TIERS.index(verdict.tier)
    reasons = list(verdict.reasons)
    if verdict.confidence < spec.confidence and rank < len(TIERS) - 1:
        rank += 1
        reasons.append(f"low confidence {verdict.confidence:.2f}: one tier up")
    if pressure is not None and pressure >= spec.budget_pressure and rank > 0:
        rank -= 1
        reasons.append(f"budget {pressure:.0%} used: one tier down")
    tier = TIERS[rank]
    return TierChoice(alias, tier, spec.model_for(tier), verdict.confidence, tuple(reasons))


def _texts(messages: list[Any], body: Mapping[str, Any]) -> tuple[int, str]:
    """Characters of text in the whole prompt, and the last user message's text."""
    total = 0
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _text_of(message.get("content"))
        total += len(text)
        if message.get("role") == "user":
            last_user = text
    system = body.get("system") or body.get("instructions")
    if system is not None:
        total += len(_text_of(system))
    return total, last_user


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _wants_schema(body: Mapping[str, Any]) -> bool:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return True
    text = body.get("text")
    inner = text.get("format") if isinstance(text, dict) else None
    return isinstance(inner, dict) and inner.get("type") == "json_schema"
